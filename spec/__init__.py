"""The project's contracts, torch-free: the latent spec (``spec.latent``) and the model manifest (``spec.manifest``).

Training, the service, the benchmarks, the scripts and the tests all read these; neither module imports torch or
FastAPI."""
