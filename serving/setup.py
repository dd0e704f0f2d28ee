"""rise-runtime: run exported RISE policies without TensorFlow (numpy + onnxruntime).

Installs the import package `rise_runtime` (see ../BUILD.md, "Package layout"). The training
distribution (rise-tf, in the folder above) depends on this one, never the other way round.

    pip install ./serving                     # numpy + onnxruntime: load a model, step it
    pip install './serving[play]'             # + gymnasium, ale-py, Pillow: rise-play, GIFs
    pip install './serving[server]'           # + the HTTP server's stack: rise-serve
    pip install './serving[video]'            # + H.264 MP4 recordings (PyAV)
    RISE_RUNTIME_GPU=1 pip install ./serving  # onnxruntime-gpu (with its CUDA/cuDNN wheels) instead

GPU is a build switch, not an extra: onnxruntime and onnxruntime-gpu install the same `onnxruntime`
module and must never share an environment, and pip cannot drop a base requirement when an extra
is chosen; an extra would put both wheels into one environment.
"""
import os

from setuptools import setup

GPU = os.environ.get("RISE_RUNTIME_GPU", "").strip().lower() in ("1", "true", "yes")
# numpy 1.x and 2.x both work (the runtime is tested on both).
# The GPU build stays on CUDA 12 / cuDNN 9 (what BUILD.md documents): onnxruntime-gpu 1.20-1.26 with
# its [cuda,cudnn] extras pulls nvidia-cuda-runtime-cu12 and nvidia-cudnn-cu12 9; from 1.27 on it
# pulls the CUDA 13 wheels (resolved with pip --dry-run, 2026-12-05). The CPU build takes the same
# range, so both builds run the same onnxruntime release (1.26 today).
ONNXRUNTIME_VERSIONS = ">=1.20,<1.27"
GPU_ONNXRUNTIME = f"onnxruntime-gpu[cuda,cudnn]{ONNXRUNTIME_VERSIONS}"
ONNXRUNTIME = GPU_ONNXRUNTIME if GPU else f"onnxruntime{ONNXRUNTIME_VERSIONS}"

EXTRAS = {
    # rise-play: the model's own env (ALE or a gymnasium id) and GIF recording.
    "play": ["gymnasium>=1.0,<2", "ale-py>=0.12,<0.13", "Pillow>=10"],
    # rise-serve: Starlette on uvicorn, PNG decoding, Prometheus metrics. uvicorn is bounded because
    # rise_runtime.http_protocol extends its h11 protocol (tested with 0.54).
    "server": ["starlette>=0.37", "uvicorn>=0.30,<0.60", "h11>=0.14", "Pillow>=10", "prometheus-client>=0.20"],
    # Preprocessing cases not reimplemented in numpy ("linear", screens smaller than the frame).
    "opencv": ["opencv-python-headless>=4.8"],
    # Browser-playable MP4 recordings (H.264, yuv420p): PyAV's wheels bundle FFmpeg with libx264
    # (about 100 MB); OpenCV's wheels have no H.264 encoder.
    "video": ["av>=12"],
}

setup(
    name="rise-runtime",
    version="0.1.0",
    description="Run exported RISE (rise-tf) policies in real time on onnxruntime: no TensorFlow.",
    python_requires=">=3.10",
    packages=["rise_runtime", "rise_runtime.envs", "rise_runtime.data"],
    package_data={"rise_runtime.data": ["*.csv"]},
    install_requires=["numpy>=1.23", ONNXRUNTIME],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "rise-play=rise_runtime.play:main",
            "rise-serve=rise_runtime.server:main",
        ],
    },
)
