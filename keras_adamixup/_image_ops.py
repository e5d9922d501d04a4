"""NumPy image operations shared by the audit's near-copies and the duplicate search.

`crop_resized` makes what a crop of a few pixels resized back looks like: the
audit's ``"crop"`` canaries (`keras_adamixup.audit.canaries.NearCopy`); the
crops `keras_adamixup.duplicates.near_duplicate_groups(crop=)` compares images
under are the same, as the per-axis matrices of `crop_matrix` (and its
translations those of `shift_matrix`). Bilinear with half-pixel centres, as
TensorFlow's ``tf.image.resize``.
"""

import numpy as np


def resize_matrix(n, size):
    """The ``(size, n)`` bilinear interpolation matrix (half-pixel centres) that
    resizes an axis of `n` pixels to `size`."""
    return _sampling_matrix(np.clip((np.arange(size) + 0.5) * (n / size) - 0.5, 0.0, n - 1), n)


def crop_matrix(size, cut, start):
    """``(size, size)``: an axis cropped to ``[start, start + size − cut)`` and resized
    back to `size` bilinearly (`crop_resized` along one axis, as a matrix). `cut` and
    `start` may be fractional (a box between pixels: the duplicate search compares
    crops in half-pixel steps); whole numbers give `crop_resized` exactly."""
    kept = size - cut
    at = start + np.clip((np.arange(size) + 0.5) * (kept / size) - 0.5, 0.0,
                         max(kept - 1.0, 0.0))
    return _sampling_matrix(np.clip(at, 0.0, size - 1.0), size)


def _sampling_matrix(at, n):
    """``(len(at), n)``: row ``r`` reads an axis of `n` pixels at the (fractional,
    in-range) position ``at[r]``, interpolating linearly between its two pixels."""
    below = np.floor(at).astype("int64")
    above = np.minimum(below + 1, n - 1)
    matrix = np.zeros((len(at), n))
    np.add.at(matrix, (np.arange(len(at)), below), 1.0 - (at - below))
    np.add.at(matrix, (np.arange(len(at)), above), at - below)
    return matrix


def shift_matrix(size, offset):
    """``(size, size)``: an axis moved by `offset` pixels, its edge pixel repeated
    (pixel ``r`` of the result is pixel ``clip(r − offset)`` of the input; a
    fractional `offset` interpolates linearly between two pixels)."""
    return _sampling_matrix(np.clip(np.arange(size) - offset, 0.0, size - 1.0), size)


def resize_axis(images, size, axis):
    """Bilinear resize of one `axis` of `images` to `size` (half-pixel centres), as
    one product with the ``(size, n)`` interpolation matrix (float images keep
    their precision; others become float64).

    Args:
        images: an array.
        size: the axis' new length.
        axis: the axis to resize.
    """
    matrix = resize_matrix(images.shape[axis], size)
    dtype = images.dtype if images.dtype.kind == "f" else np.dtype("float64")
    moved = np.tensordot(np.asarray(images, dtype=dtype), matrix.astype(dtype),
                         axes=([axis], [1]))
    return np.moveaxis(moved, -1, axis)


def crop_resized(images, cut, top, left, axes=(0, 1)):
    """`images` with `cut` pixels cropped off each of two `axes` (`top` of them
    before on the first, `left` on the second), resized back bilinearly.

    Args:
        images: an array with the two image axes `axes` (``(H, W[, C])``: (0, 1);
            a batch ``(n, H, W, C)``: (1, 2)).
        cut: pixels cropped off each axis, in ``[0, size)``.
        top: how many of them come off the start of the first axis (``≤ cut``).
        left: the same on the second.
        axes: the height and width axes.

    Example:

    ```python
    crop_resized(image, 2, 1, 0)  # (32, 32, 3): rows 1..30, columns 0..29, resized
    ```
    """
    first, second = axes
    h, w = images.shape[first], images.shape[second]
    index = [slice(None)] * images.ndim
    index[first], index[second] = slice(top, top + h - cut), slice(left, left + w - cut)
    return resize_axis(resize_axis(images[tuple(index)], h, first), w, second)


def halved(images):
    """Images ``(n, H, W[, C])`` at half their sides, each new pixel the mean of
    a 2 × 2 block (an odd last row or column dropped), in their own dtype
    (integers rounded): what the duplicate search keeps of a dataset too large
    to keep whole (`keras_adamixup._fit_dataset.scan`)."""
    images = np.asarray(images)
    h, w = images.shape[1] // 2 * 2, images.shape[2] // 2 * 2
    blocks = images[:, :h, :w].astype("float32")
    mean = (blocks[:, 0::2, 0::2] + blocks[:, 1::2, 0::2]
            + blocks[:, 0::2, 1::2] + blocks[:, 1::2, 1::2]) / 4.0
    if np.issubdtype(images.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(images.dtype)
