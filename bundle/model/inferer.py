"""Whole-volume DDIM ensemble inference: ``inferer(inputs, network)`` -> (lesion probability, uncertainty).

For each axial slice with tissue, f^I encodes the slice stack once; N noisy masks x_T ~ N(0, I) then run K DDIM
steps together (a batch of slices x N samples) reusing the cached features. Each final estimate x0_n in [-1, 1] is
mapped to a soft mask s_n = (x0_n + 1) / 2 and the slice's outputs are

    p     = mean_n s_n                 (lesion probability; the mask is p > 0.5)
    sigma = sqrt(mean_n (s_n - p)^2)   (uncertainty: spread of the N samples, 0 when they agree, at most 0.5)

Slices without tissue get p = sigma = 0 and cost nothing. With adaptive stopping (``stop_tolerance`` tau > 0) a
slice leaves the batch after step k >= 2 once its samples agree and have stopped moving,

    max_{n,v} |s_n^(k) - p^(k)| < tau   and   max_{n,v} |s_n^(k) - s_n^(k-1)| < tau,

and keeps its step-k estimates; the slices that are still uncertain get all K steps (and every slice does with
N = 1, where there are no samples to agree).

With mirroring (``mirror``), the odd-numbered samples see the left-right mirrored slice stack M(x) and their
masks are mirrored back, s_n = M(s_n') (M = flip of the first in-plane axis, R-L after ``Orientationd`` RAS; M M = I),
so the N samples average over both views at the same denoiser cost; f^I runs once per view.

With a coarse head on the network (``bundle.model.network``, ``coarse_head``) and ``roi_threshold`` c > 0, the diffusion
runs only where the head sees candidates: per slice (or tile) the region of interest is

    R = dilate({v : sigmoid(h(f^I(x)))(v) > c}, m pixels)        (m = ``roi_margin``, a square neighbourhood)

slices and tiles with an empty R are not sampled at all (p = sigma = 0), and p and sigma are 0 outside R.
"""

from __future__ import annotations

import torch
from monai.inferers import Inferer, sliding_window_inference
from monai.utils import convert_to_dst_type

from bundle.model.precision import PRECISIONS, autocast_dtype
from bundle.model.scheduler import DDIMScheduler
from bundle.preprocessing.slices import slice_stacks, tissue_slices

ALL_WINDOWS = 64  # windows per predict call when tiling: more than a cropped head slice has, so all at once


class TissueSliceInferer(Inferer):
    """Runs a per-slice predictor over the axial tissue slices of each volume: (B, C, H, W, D) -> (B, 2, H, W, D).

    Subclasses implement ``predict(stacks, network, generator)`` -> (S, 2, H, W) for a batch of slice stacks
    (channel 0 lesion probability, channel 1 uncertainty). Slices without tissue get zeros and cost nothing. A
    MetaTensor input gives a MetaTensor output with the same metadata, so ``Invertd`` can map it back.

    Speed settings: ``channels_last`` stores images and weights as NHWC (faster convolutions on CPU and GPU, same
    arithmetic); ``precision`` "auto" | "fp32" | "bf16" runs the network under bf16 autocast where the hardware
    has native bf16 (see ``bundle.model.precision``).

    Tiles (``tile_size`` T > 0): each slice is predicted in T x T windows overlapping by ``tile_overlap`` (MONAI
    ``sliding_window_inference``; all windows of a slice batch in one call), blended with Gaussian weights, both
    channels alike. The networks were trained on T x T patches, and their instance and group normalisations take
    statistics over whatever field of view they get: tiles give them the field of view of training. 0: whole slices.

    Tissue boxes (``tile_box`` m >= 0, with tiles): each slice is tiled only over its own tissue's bounding box,
    grown by m pixels and to at least T x T (within the slice), instead of over the whole cropped field of view, so a
    slice whose tissue fits one tile costs one window instead of up to four; p = sigma = 0 outside the box. -1: off.
    """

    def __init__(
        self,
        context_slices: int = 1,
        slice_batch_size: int = 16,
        tissue_threshold: float = 0.2,
        min_tissue_fraction: float = 0.005,
        seed: int = 0,
        channels_last: bool = True,
        precision: str = "auto",
        tile_size: int = 0,
        tile_overlap: float = 0.25,
        tile_box: int = -1,
    ) -> None:
        super().__init__()
        self.tile_box = tile_box
        if tile_size < 0 or not 0 <= tile_overlap < 1:
            raise ValueError(f"tile_size must be >= 0 and tile_overlap in [0, 1), got {tile_size}, {tile_overlap}")
        self.tile_size, self.tile_overlap = tile_size, tile_overlap
        self.context_slices = context_slices
        self.slice_batch_size = slice_batch_size
        self.tissue_threshold = tissue_threshold
        self.min_tissue_fraction = min_tissue_fraction
        self.seed = seed
        self.channels_last = channels_last
        self.precision = precision
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")

    def prepare(self, device: torch.device) -> None:
        """Called once per call before any slice is predicted."""

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def layout_weights(self, network: torch.nn.Module) -> None:
        """Store the weights channels_last if set; call outside inference mode, so they stay trainable (validation)."""
        if self.channels_last:
            network.to(memory_format=torch.channels_last)

    def predict(self, stacks: torch.Tensor, network: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args, **kwargs) -> torch.Tensor:
        if inputs.ndim != 5:
            raise ValueError(f"expected a batch of 3D volumes (B, C, H, W, D), got shape {tuple(inputs.shape)}")
        self.layout_weights(network)
        with torch.inference_mode():
            output = self._infer(torch.as_tensor(inputs).float(), network)
        return convert_to_dst_type(output, dst=inputs, dtype=torch.float32)[0]

    def _infer(self, images: torch.Tensor, network: torch.nn.Module) -> torch.Tensor:
        self.prepare(images.device)
        dtype = autocast_dtype(self.precision, images.device)  # resolved once per call, not per slice batch
        b, _, h, w, d = images.shape
        output = torch.zeros((b, 2, h, w, d), device=images.device)
        for i in range(b):
            generator = torch.Generator(device=images.device).manual_seed(self.seed)  # same noise per volume
            slices = tissue_slices(images[i], self.tissue_threshold, self.min_tissue_fraction)
            for start in range(0, len(slices), self.slice_batch_size):
                chunk = slices[start : start + self.slice_batch_size]
                prediction = self.predict_slices(images[i], chunk, network, generator, dtype)
                output[i, :, :, :, chunk] = prediction.permute(1, 2, 3, 0)
        return output

    def predict_slices(
        self,
        volume: torch.Tensor,
        slices: torch.Tensor,
        network: torch.nn.Module,
        generator: torch.Generator,
        dtype: torch.dtype | None,
    ) -> torch.Tensor:
        """``predict`` on the axial ``slices`` of one volume (C, H, W, D) -> (S, 2, H, W) float32, under autocast
        to ``dtype`` (None: float32). Call ``prepare`` first and run it under ``torch.inference_mode``."""
        stacks = slice_stacks(volume, slices, self.context_slices)  # laid out below, once per network input
        with torch.autocast(volume.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if not self.tile_size:
                return self.predict(self._layout(stacks), network, generator).float()
            if self.tile_box < 0:
                return self._tiled(stacks, network, generator)
            output = torch.zeros((stacks.shape[0], 2, *stacks.shape[-2:]), device=stacks.device)
            for i, box in enumerate(self.tissue_boxes(stacks)):
                if box is not None:
                    output[i : i + 1, :, box[0], box[1]] = self._tiled(stacks[i : i + 1, :, box[0], box[1]], network,
                                                                        generator)
            return output

    def _tiled(self, stacks: torch.Tensor, network: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
        """``predict`` in T x T windows over slice stacks (S, C', H, W), Gaussian-blended -> (S, 2, H, W) float32."""
        return sliding_window_inference(
            stacks,
            roi_size=(self.tile_size, self.tile_size),
            sw_batch_size=ALL_WINDOWS,
            overlap=self.tile_overlap,
            mode="gaussian",
            predictor=lambda tiles: self.predict(self._layout(tiles.contiguous()), network, generator).float(),
        ).float()

    def tissue_boxes(self, stacks: torch.Tensor) -> list[tuple[slice, slice] | None]:
        """Per slice stack (S, C', H, W): the in-plane box of its centre slice's tissue (> ``tissue_threshold``),
        grown by ``tile_box`` pixels and to at least ``tile_size`` per axis within the slice; None without tissue."""
        centre = stacks[:, stacks.shape[1] // 2]
        boxes = []
        for tissue in centre > self.tissue_threshold:
            if not tissue.any():
                boxes.append(None)
                continue
            box = []
            for axis, size in zip((1, 0), tissue.shape):
                where = tissue.any(dim=axis).nonzero()[:, 0]
                low, high = int(where[0]) - self.tile_box, int(where[-1]) + 1 + self.tile_box
                grow = max(self.tile_size - (high - low), 0)
                low, high = low - grow // 2, high + grow - grow // 2
                shift = max(-low, 0) - max(high - size, 0)  # move back inside the slice
                box.append(slice(max(low + shift, 0), min(high + shift, size)))
            boxes.append(tuple(box))
        return boxes


class DiffusionEnsembleInferer(TissueSliceInferer):
    """Sample N lesion masks per slice with K DDIM steps and return their mean and spread.

    Args:
        scheduler: the (stride-correct) DDIM scheduler the network was trained with.
        num_samples: N, masks sampled per slice, batched together.
        num_inference_steps: K, DDIM steps.
        eta: DDIM stochasticity (0 = deterministic given x_T).
        seed: seed of x_T (and of the step noise when eta > 0); outputs are reproducible for fixed settings.
        context_slices: neighbouring slices on each side given to f^I (must match the network).
        slice_batch_size: slices denoised together; memory grows with slice_batch_size x tiles x N masks per call.
        tissue_threshold: normalised intensity above which a voxel counts as tissue.
        min_tissue_fraction: slices with a smaller tissue fraction are skipped.
        channels_last, precision: speed settings (see ``TissueSliceInferer``).
        stop_tolerance: tau of adaptive stopping (module docstring); 0 runs all K steps on every slice.
        mirror: odd-numbered samples see the left-right mirrored slices (module docstring); no effect with N = 1.
        tile_size, tile_overlap, tile_box: sample in tiles of the training patch size, over each slice's tissue box
            with ``tile_box`` >= 0 (see ``TissueSliceInferer``).
        roi_threshold, roi_margin: sample only in the coarse head's region of interest (module docstring); 0: off.
    """

    def __init__(
        self,
        scheduler: DDIMScheduler,
        num_samples: int = 8,
        num_inference_steps: int = 5,
        eta: float = 0.0,
        seed: int = 0,
        context_slices: int = 1,
        slice_batch_size: int = 16,
        tissue_threshold: float = 0.2,
        min_tissue_fraction: float = 0.005,
        channels_last: bool = True,
        precision: str = "auto",
        stop_tolerance: float = 0.0,
        mirror: bool = False,
        tile_size: int = 0,
        tile_overlap: float = 0.25,
        tile_box: int = -1,
        roi_threshold: float = 0.0,
        roi_margin: int = 4,
    ) -> None:
        super().__init__(
            context_slices, slice_batch_size, tissue_threshold, min_tissue_fraction, seed, channels_last, precision,
            tile_size, tile_overlap, tile_box,
        )
        if not 0 <= roi_threshold < 1 or roi_margin < 0:
            raise ValueError(f"roi_threshold must be in [0, 1) and roi_margin >= 0, got {roi_threshold}, {roi_margin}")
        self.roi_threshold, self.roi_margin = roi_threshold, roi_margin
        if num_samples < 1 or num_inference_steps < 1:
            raise ValueError(f"num_samples ({num_samples}) and num_inference_steps ({num_inference_steps}) must be >= 1")
        if not 0 <= stop_tolerance < 0.5:
            raise ValueError(f"stop_tolerance must be in [0, 0.5), got {stop_tolerance}")
        self.stop_tolerance = stop_tolerance
        self.mirror = mirror
        self.scheduler = scheduler
        self.num_samples = num_samples
        self.num_inference_steps = num_inference_steps
        self.eta = eta

    def prepare(self, device: torch.device) -> None:
        self.scheduler.set_timesteps(self.num_inference_steps, device=device)

    def predict(self, stacks: torch.Tensor, network: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
        """DDIM-sample N soft masks per slice stack (S, C', H, W); returns (S, 2, H, W): mean and spread; with
        ``roi_threshold`` only in the coarse head's region of interest (module docstring)."""
        features = network.encode_image(stacks)
        if not self.roi_threshold:
            return self._sample(stacks, features, network, generator)
        roi = self.region_of_interest(network, features)
        output = torch.zeros((stacks.shape[0], 2, *stacks.shape[-2:]), device=stacks.device)
        keep = roi.flatten(1).any(dim=1)
        if keep.any():
            output[keep] = self._sample(stacks[keep], features[keep], network, generator) * roi[keep]
        return output

    def region_of_interest(self, network: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
        """R of the module docstring, (S, 1, H, W) float 0/1, from the coarse head on the features F_I."""
        candidates = (torch.sigmoid(network.coarse_logits(features).float()) > self.roi_threshold).float()
        size = 2 * self.roi_margin + 1
        return torch.nn.functional.max_pool2d(candidates, size, stride=1, padding=self.roi_margin)

    def _sample(self, stacks: torch.Tensor, features: torch.Tensor, network: torch.nn.Module,
                generator: torch.Generator) -> torch.Tensor:
        """The DDIM loop of ``predict`` on slice stacks (S, C', H, W) with their features F_I."""
        n, (s, _, h, w) = self.num_samples, stacks.shape
        x = self._layout(torch.randn((s * n, 1, h, w), generator=generator, device=stacks.device))
        features = self._features(stacks, features, network, n)  # per view, reused for all steps and samples
        soft = torch.empty((s, n, h, w), device=stacks.device)  # final estimates, per slice
        active = torch.arange(s, device=stacks.device)  # slices still being denoised
        # never after the last step; never with one sample, which has no other to agree with
        adaptive_steps = len(self.scheduler.timesteps) - 1 if self.stop_tolerance > 0 and n > 1 else 0
        previous = None
        for k, t in enumerate(self.scheduler.timesteps):
            timesteps = torch.full((x.shape[0],), int(t), device=stacks.device, dtype=torch.long)
            output = network.denoise(x, timesteps, features).float()  # the DDIM update itself in float32
            x, x0 = self.scheduler.step(output, int(t), x, eta=self.eta, generator=generator)
            if k < adaptive_steps:
                current = self._soft(x0, n)
                if previous is not None:
                    settled = self._settled(current, previous)
                    soft[active[settled]] = current[settled]
                    keep = ~settled
                    active, current = active[keep], current[keep]
                    rows = keep.repeat_interleave(n)
                    x, features = self._layout(x[rows]), self._layout(features[rows])
                    if not len(active):
                        return self._mean_and_spread(soft)
                previous = current
        soft[active] = self._soft(x0, n)
        return self._mean_and_spread(soft)

    def _features(
        self, stacks: torch.Tensor, features: torch.Tensor, network: torch.nn.Module, n: int
    ) -> torch.Tensor:
        """F_I = f^I of each slice stack (``features``) repeated for its N samples, (S * N, F, h, w); odd samples get
        the mirrored view's."""
        if not self.mirror or n < 2:
            return features.repeat_interleave(n, dim=0)
        mirrored = network.encode_image(self._layout(stacks.flip(-2)))
        views = torch.arange(n, device=stacks.device) % 2  # 0: as given, 1: mirrored
        return self._layout(torch.stack([features, mirrored], dim=1)[:, views].flatten(0, 1))

    def _soft(self, x0: torch.Tensor, n: int) -> torch.Tensor:
        """Soft masks s = (x0 + 1) / 2 in [0, 1], (S * N, 1, H, W) -> (S, N, H, W), mirrored samples mirrored back."""
        soft = ((x0.float() + 1) / 2).clamp(0, 1).reshape(-1, n, *x0.shape[-2:])
        if self.mirror:
            soft[:, 1::2] = soft[:, 1::2].flip(-2)
        return soft

    @staticmethod
    def _mean_and_spread(soft: torch.Tensor) -> torch.Tensor:
        """(S, N, H, W) soft masks -> (S, 2, H, W): p = mean_n s_n and sigma = sqrt(mean_n (s_n - p)^2)."""
        return torch.stack([soft.mean(dim=1), soft.std(dim=1, unbiased=False)], dim=1)

    def _settled(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(S,) bool: the N samples of the slice agree and moved less than ``stop_tolerance`` in the last step."""
        spread = (current - current.mean(dim=1, keepdim=True)).abs().amax(dim=(1, 2, 3))
        moved = (current - previous).abs().amax(dim=(1, 2, 3))
        return (spread < self.stop_tolerance) & (moved < self.stop_tolerance)


class SliceStackInferer(TissueSliceInferer):
    """Deterministic baseline on the same 2.5D slice stacks: probability ``sigmoid(network(stack))``, uncertainty 0.

    Same output layout as ``DiffusionEnsembleInferer``, so the same postprocessing, report and evaluation apply.
    With ``mirror`` the probability is the mean over the slices as given and mirrored back from the left-right
    mirrored slices, p = (sigmoid(f(x)) + M(sigmoid(f(M(x))))) / 2 (two forward passes).
    """

    def __init__(self, *args, mirror: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mirror = mirror

    def predict(self, stacks: torch.Tensor, network: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
        prob = torch.sigmoid(network(stacks).float())
        if self.mirror:
            prob = (prob + torch.sigmoid(network(self._layout(stacks.flip(-2))).float()).flip(-2)) / 2
        return torch.cat([prob, torch.zeros_like(prob)], dim=1)


class CoarseHeadInferer(TissueSliceInferer):
    """The coarse head alone, deterministic: p = sigmoid(h(f^I(x))), uncertainty 0 (same layout as the others).

    With ``mirror`` p is the mean over the slices as given and mirrored back from the mirrored slices.
    """

    def __init__(self, *args, mirror: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mirror = mirror

    def predict(self, stacks: torch.Tensor, network: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
        prob = torch.sigmoid(network.coarse_logits(network.encode_image(stacks)).float())
        if self.mirror:
            mirrored = network.coarse_logits(network.encode_image(self._layout(stacks.flip(-2))))
            prob = (prob + torch.sigmoid(mirrored.float()).flip(-2)) / 2
        return torch.cat([prob, torch.zeros_like(prob)], dim=1)
