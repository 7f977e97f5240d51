"""Which hardware description a prediction uses for an accelerator product.

AIConfigurator 0.12.0 ships measured kernel tables for some systems
(aiconfigurator_core/systems/<name>.yaml and data/<name>/). For the products it has no
tables for, pdgen gives it a system description of its own and asks for its roofline
("SOL" database mode): speed-of-light compute and memory time, uncalibrated."""

from __future__ import annotations

# pdgen's product names (models.ACCELERATOR_GIB) -> AIConfigurator system with measured data.
MEASURED = {"H100": "h100_sxm", "H200": "h200_sxm", "A100-80GB": "a100_sxm", "A100-40GB": "a100_sxm",
            "L40S": "l40s", "L4": "l4", "B200": "b200_sxm", "A30": "a30"}

# Roofline facts from the vendors' datasheets: memory bandwidth (bytes/s), dense BF16 tensor
# FLOP/s, memory (bytes), compute capability, and the per-accelerator link between cards of
# one node (bytes/s, one direction). A10: 600 GB/s, 125 TFLOPS BF16 (250 with sparsity), PCIe 4;
# L20: 864 GB/s, 119.5 TFLOPS, PCIe 4; H20: 4.0 TB/s, 148 TFLOPS, NVLink 900 GB/s; H800:
# the H100 SXM's 3.35 TB/s and 989 TFLOPS, NVLink 400 GB/s.
ROOFLINE = {
    "A10": {"mem_bw": 600e9, "bf16": 125e12, "memory": 24e9, "sm": 86, "link": 32e9},
    "A10G": {"mem_bw": 600e9, "bf16": 70e12, "memory": 24e9, "sm": 86, "link": 32e9},
    "L20": {"mem_bw": 864e9, "bf16": 119.5e12, "memory": 48e9, "sm": 89, "link": 32e9},
    "H20": {"mem_bw": 4.0e12, "bf16": 148e12, "memory": 96e9, "sm": 90, "link": 450e9},
    "H800": {"mem_bw": 3.35e12, "bf16": 989e12, "memory": 80e9, "sm": 90, "link": 200e9},
}
NOT_NVIDIA = ("Ascend910B", "Ascend910C")


def system_yaml(product: str, name: str, inter_node_bytes_per_s: float) -> str:
    """An AIConfigurator system description for a ROOFLINE product. The empirical factors are
    AIConfigurator's own defaults for its PCIe systems (l40s.yaml): 0.8 of the datasheet
    bandwidth, 3 us per memory op, 10 us per peer-to-peer hop."""
    f = ROOFLINE[product]
    return "\n".join([
        f"# pdgen's roofline description of {product} (datasheet figures; not measured)",
        f"data_dir: data/{name}",
        "gpu:",
        f"  mem_bw: {int(f['mem_bw'])}",
        "  mem_bw_empirical_scaling_factor: 0.8",
        "  mem_empirical_constant_latency: 0.000003",
        f"  mem_capacity: {int(f['memory'])}",
        f"  bfloat16_tc_flops: {int(f['bf16'])}",
        f"  int8_tc_flops: {int(2 * f['bf16'])}",
        f"  fp8_tc_flops: {int(2 * f['bf16'])}",
        "  power: 300",
        f"  sm_version: {f['sm']}",
        "node:",
        "  num_gpus_per_node: 8",
        f"  inter_node_bw: {int(inter_node_bytes_per_s)}",
        f"  intra_node_bw: {int(f['link'])}",
        "  pcie_bw: 32000000000",
        "  p2p_latency: 0.00001",
        "misc:",
        "  nccl_mem: {1: 0, 2: 358612992, 4: 411041792, 8: 411041792}",
        "  other_mem: 3758096384",
        "  nccl_version: '2.27.3'",
        ""])
