"""Training: the fit loop (`fit.fit`), the jitted step and epoch, the optimiser, the annealing schedules,
early stopping, history.csv and augmentation.

May import `ssvae.model` and everything below it; never `ssvae.results` or `ssvae.pipeline`.
"""
