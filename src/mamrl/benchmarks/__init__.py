"""The `mamrl bench*` commands' measurements, one module per thing measured.

* `simulator` (`mamrl bench`): the compiled simulator against the Python oracle, queue
  disciplines and backpressure, the yardsticks' solvers;
* `deep` (`mamrl bench-deep`): the deep per-router learner's rollouts and TRPO iterations;
* `meta` (`mamrl bench-meta`): one MAML-TRPO meta-iteration, by phase, and its memory;
* `scaling` (`mamrl bench-scaling`): the simulator and the learners versus the number of
  routers, and a sweep's wall time per backend;
* `common`: timing, machine description and the markdown sections they all write.

The modules are imported on demand (`deep` and `meta` import torch).
"""
