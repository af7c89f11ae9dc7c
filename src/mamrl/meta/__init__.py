"""Meta-learning for fast adaptation to link failures (paper §2.3, Algorithms 1–2).

`tasks`: the failure-task distribution eta(M); `maml`: MAML-TRPO meta-training of every router's
policy; `adaptation`: deployment with failure detection, reset and online adaptation.
"""
