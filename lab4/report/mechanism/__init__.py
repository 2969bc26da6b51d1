"""What the KL schedules do to training, measured from each run's per-iteration log (metrics.csv).

measures.py takes each run's numbers (how fast the KL collapses, how often the gradient is clipped, its
peak, the MSE of epoch 1, divergence) and tests them between schedules with the report's test; macros.py
turns them into report macros; figure.py draws the KL and the gradient norm over epoch 1. They read any
runs folder (results/study, the mechanism grid's results) and show nothing without runs. control.py is the
positive control's section: whether z is used where it is worth nats, per schedule (results/control/).
"""
