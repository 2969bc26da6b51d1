"""What the report says about the loss: how training went under it (dynamics.py: convergence, MSE and KL per
strategy, the KL's share, posterior collapse), the jump where the teacher-forcing ratio falls (tf_drop.py),
and the loss balance (balance.py: the grid's KL schedules against the same on the lab's loss, from the
lab-loss screen's records, screen_record.py)."""
