"""The chip's ceilings for the GPU study's TFLOP/s: NVIDIA's datasheet peaks and a measured GEMM rate.

#17 asks for the achieved TFLOP/s against the chip's peak for fp32, TF32 and bf16. Two ceilings
are reported side by side, because neither alone is honest:

* the **datasheet peak** (dense, no sparsity): NVIDIA's datasheets give the tensor-core figures
  *with* 2:4 structured sparsity, which dense training never uses, so the dense peak is half of
  that figure (the table keeps the datasheet's number and halves it);
* the **GEMM rate measured on the machine** in the same run (``bench.probe``'s ``gemm_rates``:
  an n×n matmul in each precision through JAX), which is what a large dense kernel reaches there
  (clocks, power limits, the software stack).

No Keras or JAX import here: the report renders anywhere.
"""

from __future__ import annotations

PRECISIONS = ("float32", "tensorfloat32", "bfloat16")
PRECISION_LABELS = {"float32": "fp32", "tensorfloat32": "TF32", "bfloat16": "bf16"}

# (name fragment as nvidia-smi prints it, label, fp32 (no tensor cores), TF32 and bf16 tensor cores
# *with sparsity*, as the datasheet prints them), in TFLOP/s. The first fragment found in the name
# wins, so the more specific come first ("H100 NVL" before "H100").
DATASHEET = (
    ("H200 NVL", "H200 NVL", 60.0, 835.0, 1671.0),
    ("H200", "H200 SXM", 67.0, 989.0, 1979.0),
    ("H100 NVL", "H100 NVL", 60.0, 835.0, 1671.0),
    ("H100 PCIe", "H100 PCIe", 51.0, 756.0, 1513.0),
    ("H100", "H100 SXM", 67.0, 989.0, 1979.0),
    ("A100", "A100", 19.5, 312.0, 624.0),
)


def datasheet_peaks(gpu_name: str) -> dict | None:
    """``{"label", "float32", "tensorfloat32", "bfloat16"}`` dense TFLOP/s for an nvidia-smi name, or None."""
    name = gpu_name.lower()
    for fragment, label, fp32, tf32_sparse, bf16_sparse in DATASHEET:
        if fragment.lower() in name:
            return {"label": label, "float32": fp32, "tensorfloat32": tf32_sparse / 2, "bfloat16": bf16_sparse / 2}
    return None


def run_precision(settings: dict, on_gpu: bool = True) -> str:
    """The precision the run's convolutions and matmuls ran in.

    ``mixed_bfloat16`` computes in bf16; ``--matmul-precision highest|float32`` asks for full fp32;
    otherwise fp32 tensors run in TF32 on a GPU of Ampere or newer (JAX's default there) and in
    fp32 on a CPU, which has no TF32.
    """
    if "bfloat16" in str(settings.get("dtype_policy") or ""):
        return "bfloat16"
    if settings.get("matmul_precision") in ("highest", "float32") or not on_gpu:
        return "float32"
    return "tensorfloat32"


def ceiling_rows(achieved_tflops: float, gemm: dict | None, gpus: list[str], settings: dict) -> list[list[str]]:
    """One row per precision: the datasheet's dense peak, the measured GEMM rate, and the achieved share of each."""
    peaks = datasheet_peaks(gpus[0]) if gpus else None
    rates = (gemm or {}).get("rates", {})
    own = run_precision(settings, on_gpu=bool(gpus))
    rows = []
    for p in PRECISIONS:
        peak = peaks and peaks[p]
        rate = rates.get(p, {})
        measured = rate.get("tflops")
        rows.append([PRECISION_LABELS[p] + (" (this run)" if p == own else ""),
                     f"{peak:,.1f}" if peak else "–",
                     f"{measured:,.1f}" if measured else (rate.get("error") or "not measured"),
                     f"{100 * achieved_tflops / peak:.1f}%" if peak else "–",
                     f"{100 * achieved_tflops / measured:.1f}%" if measured else "–"])
    return rows
