"""Library code used only by the research tools in ``research/`` (probes and the toy-study driver): the one-step
denoising probe, the sampling-trajectory probe and the toy study's tables. Nothing in the product imports it."""
