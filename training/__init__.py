"""infogan-explorer training package: latent spec, networks, InfoGAN loss, loop, evaluation and ONNX export."""

__version__ = "0.1.0"
