"""pdgen: one topology file for prefill/decode-disaggregated LLM serving on Kubernetes."""

__version__ = "0.1.0"

API_VERSION = "pdgen.io/v1alpha1"
KIND = "Topology"
