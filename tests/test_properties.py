"""Property-based tests (hypothesis) of the input checks and geometry-free helpers on random data."""

from __future__ import annotations

import os
import tempfile

import nibabel as nib
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundle.inputs.input_check import InputError, check_image
from bundle.preprocessing.intensity import normalize_to_tissue
from bundle.preprocessing.slices import slice_stacks, stack_to_channels

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
dtypes = st.sampled_from([np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64])
shapes = st.lists(st.integers(1, 7), min_size=1, max_size=5).map(tuple)


@st.composite
def affines(draw):
    """Random invertible or singular voxel-to-world matrices."""
    m = np.array(draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=9, max_size=9))).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = m
    affine[:3, 3] = draw(st.lists(st.floats(-100, 100), min_size=3, max_size=3))
    return affine


@SETTINGS
@given(shape=shapes, dtype=dtypes, affine=affines(), seed=st.integers(0, 2**16))
def test_check_image_accepts_exactly_the_usable_volumes(shape, dtype, affine, seed):
    rng = np.random.default_rng(seed)
    data = (rng.random(shape) * 100).astype(dtype)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.nii.gz")
        image = nib.Nifti1Image(data, None)
        image.header.set_sform(affine, code=1)
        nib.save(image, path)
        squeezed = list(shape)
        while len(squeezed) > 3 and squeezed[-1] == 1:
            squeezed.pop()
        det = np.linalg.det(affine[:3, :3])
        usable = (
            len(squeezed) == 3 and min(squeezed) >= 2 and data.max() != data.min() and abs(det) >= 1e-9
        )
        try:
            assert check_image(path) == tuple(squeezed) and usable
        except InputError as err:
            assert not usable, str(err)
            assert str(err).startswith(path + ": ") and "\n" not in str(err)


@SETTINGS
@given(size=st.integers(1, 4000), seed=st.integers(0, 2**16), cut=st.floats(0.05, 0.95))
def test_corrupted_files_never_pass_or_crash(size, seed, cut):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, "good.nii.gz")
        nib.save(nib.Nifti1Image(rng.random((12, 12, 12)).astype(np.float32), np.eye(4)), good)
        blob = bytearray(open(good, "rb").read())
        bad = os.path.join(tmp, "bad.nii.gz")
        corrupt = blob[: int(len(blob) * cut)] if seed % 2 else rng.bytes(size) + bytes(blob[size:])
        with open(bad, "wb") as f:  # truncated, or random bytes in place of the start of the file
            f.write(corrupt)
        try:
            check_image(bad)
        except InputError as err:
            assert str(err).startswith(bad + ": ")
        else:
            raise AssertionError(f"corrupted file passed the check ({len(corrupt)} of {len(blob)} bytes)")


@SETTINGS
@given(shape=st.tuples(st.integers(1, 3), st.integers(2, 9), st.integers(2, 9), st.integers(1, 9)),
       scale=st.floats(1e-3, 1e4), seed=st.integers(0, 2**16))
def test_normalisation_is_scale_free_and_bounded(shape, scale, seed):
    x = torch.as_tensor(np.random.default_rng(seed).random(shape), dtype=torch.float32)
    a, b = normalize_to_tissue(x), normalize_to_tissue(x * scale)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert a.min() >= 0 and a.max() <= 5 and torch.isfinite(a).all()


@SETTINGS
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 5), st.integers(1, 7)),
       r=st.integers(0, 3), data=st.data())
def test_every_slice_stack_is_the_clamped_neighbourhood(shape, r, data):
    vol = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape)
    z = data.draw(st.integers(0, shape[-1] - 1))
    stack = slice_stacks(vol, torch.tensor([z]), r)[0]
    index = [min(max(k, 0), shape[-1] - 1) for k in range(z - r, z + r + 1)]
    torch.testing.assert_close(stack, stack_to_channels(vol[..., index]))
