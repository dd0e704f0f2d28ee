"""rise-tf: RISE (Recurrent Integration via Simplified Encodings) for TensorFlow / TF-Agents.

Two distributions (see BUILD.md, "Package layout"):
    rise-tf        this file: rise_tf/ -> rise_tf (training library: TensorFlow, TF-Agents) and
                   export/ -> rise_tf.export (checkpoint -> ONNX / SavedModel)
    rise-runtime   serving/setup.py: rise_runtime (TensorFlow-free: the frame preprocessing, the
                   model contract, the envs as the agent sees them, the runner, rise-play, rise-serve)
rise-tf depends on rise-runtime; it is not on PyPI, so install both from the checkout:
    pip install -e ./serving -e '.[test]'        (what `make venv` does)
"""
from setuptools import setup

PACKAGES = [
    "rise_tf",
    "rise_tf.envs",
    "rise_tf.networks",
    "rise_tf.replay",
    "rise_tf.agents",
    "rise_tf.policies",
    "rise_tf.parts",
    "rise_tf.engines",
    "rise_tf.train",
    "rise_tf.analysis",
    "rise_tf.experiments",
    "rise_tf.peers",
    "rise_tf.distributed",
    "rise_tf.export",
]

# The pinned stack of DESIGN.md: TF-Agents 0.19.0 (last release) fixes TFP 0.23 -> TF 2.15,
# typing-extensions 4.5.0, gym <= 0.23 and pygame 2.1.3. numpy and opencv are capped so that
# nothing pulls numpy 2 (TF 2.15 is built against numpy 1.x).
INSTALL_REQUIRES = [
    # The runtime (same version, from ./serving) with the envs (play) and OpenCV for preprocessing
    # cases the runtime does not reimplement in numpy; export checks parity on its onnxruntime.
    "rise-runtime[play,opencv]==0.1.0",
    "tensorflow==2.15.1",
    "tf-agents==0.19.0",
    "tensorflow-probability==0.23.0",
    "numpy>=1.23,<2",
    "gymnasium>=1.0,<2",
    "ale-py>=0.12,<0.13",
    "opencv-python-headless>=4.8,<4.11",
    "onnx>=1.15,<1.18",
    "tf2onnx==1.17.*",
    "tqdm>=4.60",
    # Plots of experiments and reports.
    "matplotlib>=3.8,<4",
    # The field's estimators (Agarwal et al. 2021): IQM, stratified bootstrap, performance profiles,
    # probability of improvement. Unpinned, pip resolves arch 8 / pandas 3, which need numpy 2 and fail
    # at import beside numpy 1.x: cap them at the versions tried with the pinned set.
    "rliable==1.2.0",
    "arch>=7.2,<8",
    "pandas>=2.2,<3",
]

# Reverb replay and the distributed engine (issue 11): dm-reverb 0.14 is the release built for
# TensorFlow 2.15 (tried beside the pinned set in a fresh venv: `pip check` clean).
REVERB = "dm-reverb==0.14.0"

EXTRAS = {
    # TensorFlow's CUDA 12.2 / cuDNN 8.9 wheels. No onnxruntime-gpu here: its wheels want another
    # cuDNN; GPU inference belongs in a runtime-only environment (serving/setup.py, RISE_RUNTIME_GPU).
    "gpu": ["tensorflow[and-cuda]==2.15.1"],
    "distributed": [REVERB],
    # The server and video extras too: make test covers the whole runtime.
    "test": ["pytest>=7.4", "pytest-timeout>=2.2", "rise-runtime[server,video]==0.1.0", REVERB],
}

setup(
    name="rise-tf",
    version="0.1.0",
    description="RISE: recurrent off-policy deep RL on images at non-recurrent cost (TF-Agents), "
    "with ONNX export and a TensorFlow-free real-time runner.",
    python_requires=">=3.11,<3.12",
    packages=PACKAGES,
    package_dir={"rise_tf.export": "export"},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "rise-train=rise_tf.train.cli:main",
            "rise-export=rise_tf.export.cli:main",
            "rise-experiment=rise_tf.experiments.cli:main",
            "rise-report=rise_tf.analysis.report:main",
            "rise-replay-server=rise_tf.distributed.server:main",
            "rise-actor=rise_tf.distributed.actor:main",
            "rise-learner=rise_tf.distributed.learner:main",
        ],
    },
)
