"""keras-adamixup: scheduled mixup against membership inference, for Keras 3."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
version = {}
exec((HERE / "keras_adamixup" / "version.py").read_text(), version)

# TensorFlow Privacy 0.8.12 pins numpy<2 and TF<=2.15, so it cannot be listed
# here: install it with `pip install --no-deps tensorflow-privacy==0.8.12`
# (the Makefile does). The [audit] extra brings the packages its
# membership-inference module needs; scikit-learn<1.6 is required by it.
AUDIT = [
    "scikit-learn>=1.2,<1.6",
    "pandas>=1.5,<4",
    "scipy>=1.10,<2",
    "matplotlib>=3.6,<4",
    "statsmodels>=0.14,<0.16",
    "immutabledict>=2.2,<5",
    "tqdm>=4.60,<5",
]
# benchmarks/dp_sgd.py's privacy accounting (the DP-SGD baseline)
BENCHMARKS = ["dp-accounting>=0.5,<0.7"]
# `make docs`: the guide and the API reference from the docstrings (mkdocs.yml)
DOCS = ["mkdocs>=1.6,<2", "mkdocstrings>=1,<2", "mkdocstrings-python>=2,<3"]

setup(
    name="keras-adamixup",
    version=version["__version__"],
    description=(
        "Scheduled mixup (AdaMixup) for Keras 3 against membership inference, "
        "with an audit built on TensorFlow Privacy."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["keras_adamixup", "keras_adamixup.*"]),
    # the command line's parser: answers --help without importing TensorFlow
    py_modules=["keras_adamixup_cli"],
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.18,<2.22",
        "keras>=3.9,<3.16",
        "numpy>=1.26,<2.5",
    ],
    extras_require={
        "audit": AUDIT,
        "datasets": ["tensorflow-datasets>=4.9,<5"],
        "benchmarks": BENCHMARKS,
        "docs": DOCS,
        "dev": AUDIT + BENCHMARKS + ["pytest>=7,<10", "pytest-xdist>=3.5,<4",
                                     "tensorflow-datasets>=4.9,<5"],
    },
    entry_points={"console_scripts": ["keras-adamixup=keras_adamixup_cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Security",
    ],
)
