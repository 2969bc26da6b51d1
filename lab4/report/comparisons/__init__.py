"""The report's comparisons: the questions fixed before the runs, tested on the primary score and on the
lab's, each with what it could have found (questions.py), and where the scores' noise comes from
(noise.py)."""
