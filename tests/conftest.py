import os

# One torch thread keeps CPU results and timings stable on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
