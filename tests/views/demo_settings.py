"""How fast the views' tests run the real order flow.

``time_scale=0.15`` rather than the usual 0.05: the analysis calls a consumer lagging
only from a 100 ms queue wait up (``LAG_MIN_NS``), and the summary's 800 ms lag is
40 ms at 0.05 but 120 ms at 0.15 (the run takes ~0.3 s).
"""

TIME_SCALE = 0.15
