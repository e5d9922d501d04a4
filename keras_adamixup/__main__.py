"""``python -m keras_adamixup``: the `keras-adamixup` command line (`keras_adamixup_cli`)."""

import sys

import keras_adamixup_cli

if __name__ == "__main__":
    sys.exit(keras_adamixup_cli.main())
