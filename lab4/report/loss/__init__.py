"""What the report says about the loss: how training went under it (dynamics.py: convergence, loss rises, MSE
and KL per strategy, posterior collapse) and the loss balance (balance.py: the grid's KL schedules against the
same on the lab's loss, from the lab-loss screen's records, screen_record.py)."""
