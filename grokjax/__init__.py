"""grokjax: the weight-norm grokking delay law as a batched JAX experiment."""
