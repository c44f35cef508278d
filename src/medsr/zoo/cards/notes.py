"""The hand-written parts of each card: what the model is, its objective, and what its
training left out. Figures never go here: they come from the evaluation."""

from __future__ import annotations

__all__ = ["NOTES"]

#: Hand-written parts of each card: what the model is and what its training left out.
NOTES: dict[str, dict[str, str]] = {
    "srresnet-mr-kspace-x2": {
        "kind": "PSNR",
        "summary": "SRResNet (Ledig et al. 2017) at x2 for MR acquired at half the matrix: "
        "the input is the centre of k-space (same field of view, Gibbs ringing). 8 residual "
        "blocks x 32 channels (CPU-sized), with `residual: zero-fill`: its output is added to "
        "the zero-filled k-space interpolation (ZIP) of the input, what the scanner itself "
        "offers, so training starts from ZIP and it learns only what ZIP misses. Its output "
        "is on the DFT grid: the first pixel centre stays where the scanner put it.",
        "objective": "L1 pixel loss; Rician noise on a fifth of the training images (sigma up to 3% "
        "of the range), so it meets both high- and low-SNR scans.",
        "remarks": "Trained on the corpus MR train role only, warm-started from srresnet-x2's "
        "weights (its features, not its grid); each training crop is degraded whole in "
        "k-space and trimmed, so the crop's own wrap-around is not learned. Checkpoints are "
        "chosen on the MR val role against ZIP. For a bicubic-shrunk input use srresnet-x2.",
    },
    "srresnet-xray-binning-x2": {
        "kind": "PSNR",
        "summary": "SRResNet (Ledig et al. 2017) at x2 for radiographs read out with 2x2 "
        "detector binning (each low-resolution pixel is the mean of a 2x2 block of the fine "
        "detector) and Poisson-Gaussian noise. 8 residual blocks x 32 channels (CPU-sized), "
        "with `residual=true`: its output is added to the bicubic upsampling of the input "
        "(the reference), so training starts from bicubic.",
        "objective": "L1 pixel loss; quantum noise at 5,000-50,000 photons per binned pixel "
        "at full intensity and read noise up to 0.4% of the range, drawn per image.",
        "remarks": "Trained on the corpus X-ray train role only (two radiographs), warm-"
        "started from srresnet-x2; checkpoints chosen on the X-ray val role against "
        "bicubic. Its figures rest on one held-out test radiograph. The bicubic-trained "
        "srresnet-x2 sharpens the noise of binned input and loses to bicubic there (see its "
        "card's acquisition table).",
    },
    "srresnet-mr-kspace-x4": {
        "kind": "PSNR",
        "summary": "SRResNet (Ledig et al. 2017) at x4 for MR acquired at a quarter of the "
        "matrix: the input is the centre of k-space (same field of view, Gibbs ringing). 8 "
        "residual blocks x 32 channels (CPU-sized), with `residual: zero-fill`: its output is "
        "added to the zero-filled k-space interpolation (ZIP) of the input, what the scanner "
        "itself offers, so training starts from ZIP. Its output is on the DFT grid: the first "
        "pixel centre stays where the scanner put it.",
        "objective": "L1 pixel loss; Rician noise on a fifth of the training images (sigma up to 3% "
        "of the range), so it meets both high- and low-SNR scans.",
        "remarks": "Trained on the corpus MR train role only, warm-started from srresnet-x4's "
        "weights; each training crop is degraded whole in k-space and trimmed, so the crop's "
        "own wrap-around is not learned. Checkpoints are chosen on the MR val role against "
        "ZIP. For a bicubic-shrunk input use srresnet-x4.",
    },
    "srresnet-x2": {
        "kind": "PSNR",
        "summary": "SRResNet (Ledig et al. 2017) at x2, reduced to 8 residual blocks x 32 "
        "channels so that it trains on a CPU, with `residual=true`: its output is added to the "
        "bicubic upsampling of the input (a global residual the paper does not have; the last "
        "layer starts at zero, so training starts from bicubic).",
        "objective": "L1 pixel loss only.",
        "remarks": "Trained on the corpus on two shared CPU cores for the iterations above; the "
        "learning curve below was still rising when the run was stopped, so more iterations "
        "(`scripts/train_zoo.sh srresnet-x2` resumes it) may still pay, slowly. X-ray gains "
        "least: bicubic is already above 53 dB on the smooth test radiograph, and this "
        "network fine-tuned on that radiograph itself reaches only about +2.0 dB there "
        "(`python scripts/zoo_ceiling.py --model srresnet-x2 --image cr-rg3 --scale 2`).",
    },
    "srresnet-x4": {
        "kind": "PSNR",
        "summary": "SRResNet (Ledig et al. 2017) at x4, reduced to 8 residual blocks x 32 "
        "channels so that it trains on a CPU, with `residual=true`: its output is added to the "
        "bicubic upsampling of the input (a global residual the paper does not have; the last "
        "layer starts at zero, so training starts from bicubic).",
        "objective": "L1 pixel loss only.",
        "remarks": "Trained on the corpus on two shared CPU cores for the iterations above; the "
        "learning curve below was still rising when the run was stopped (resume with "
        "`scripts/train_zoo.sh srresnet-x4`). Ultrasound gains least: one test image of "
        "speckle and small overlay text, which a x4 bicubic input cannot resolve; this network "
        "fine-tuned on that image itself needs about 1,000 iterations to reach +2 dB "
        "(`python scripts/zoo_ceiling.py --model srresnet-x4 --image us-us1 --scale 4`).",
    },
    "miassr": {
        "kind": "PSNR",
        "summary": "MIASSR (Zhu et al. 2021): an EDSR-lite trunk (4 blocks x 24 channels) and "
        "a Meta-Upscale module (MLP 64 hidden), one network for any scale in (1, 4], with "
        "`residual=true` (output added to the bicubic upsampling; last layer starts at zero).",
        "objective": "L1 pixel loss only (the published warm-up stage). The published GAN "
        "stage adds a VGG19 perceptual term whose ImageNet weights cannot be had offline; it "
        "was not run.",
        "remarks": "Trained on the corpus with one random scale per batch from 1.1 to 4.0 (LR "
        "made by resizing by exactly 1/s); checkpoints chosen on the val role at x2, x3 and x4. "
        "Smaller than the fixed-scale SRResNets (0.06 M parameters); the default for scales "
        "without a fixed-scale model.",
    },
    "swift-srgan-x4": {
        "kind": "GAN",
        "summary": "Swift-SRGAN (Krishnan et al. 2021): depthwise-separable SRResNet, 8 blocks "
        "x 48 channels, x4, with `residual=true` (output added to the bicubic upsampling), "
        "adversarially fine-tuned from its PSNR twin `swift-srgan-psnr-x4`.",
        "objective": "GAN stage from the twin's weights: MSE + 0.001 adversarial (vanilla "
        "BCE, separable discriminator) + 2e-8 TV + 0.006 discriminator feature matching "
        "(standing in for the MobileNetV2 term, whose ImageNet weights cannot be had "
        "offline) + the low-frequency lock (L1 between output and HR both resized by 1/4). "
        "Adam 1e-4 for both networks, 1e-5 from iteration 2000. Checkpoint: lowest GMSD on "
        "the val role among those within 0.5 dB of bicubic's PSNR.",
        "remarks": "Scored, as `medsr upscale` and `medsr eval` run it by default for GAN "
        "models, with the data-consistency projection (the output re-degrades exactly to its "
        "input, so the mean level cannot drift). Read it against its twin: a GAN trades PSNR "
        "for texture, and its claim to look better is the GMSD/HaarPSI columns.",
    },
    "swift-srgan-psnr-x4": {
        "kind": "PSNR",
        "summary": "The PSNR twin of swift-srgan-x4 and its warm-up: Swift-SRGAN's "
        "generator (Krishnan et al. 2021; depthwise-separable SRResNet, 8 blocks x 48 "
        "channels) at x4, trained on pixel losses only, with `residual=true` (output added to "
        "the bicubic upsampling; last layer starts at zero, so training starts from bicubic).",
        "objective": "L1 pixel loss only.",
        "remarks": "The starting point of the adversarial fine-tune (`swift-srgan-x4`), scored "
        "here so that the GAN's trade-off can be read against it: the GAN must keep PSNR "
        "within 0.5 dB of bicubic and beat this twin's perceptual measure (GMSD, HaarPSI).",
    },
    "blimsr-lite-psnr-x4": {
        "kind": "PSNR",
        "summary": "The PSNR twin of blimsr-lite-x4 and its warm-up: BliMSR-lite (2 residual "
        "attention groups x 2 blocks x 32 channels) at x4 on pixel losses only, with "
        "`residual=true` (output added to the bicubic upsampling).",
        "objective": "L1 pixel loss only.",
        "remarks": "The starting point of the adversarial fine-tune (`blimsr-lite-x4`).",
    },
    "blimsr-lite-x4": {
        "kind": "GAN",
        "summary": "BliMSR-lite: BliMSR's residual attention groups with multi-head "
        "convolutional attention, 2 groups x 2 blocks x 32 channels, x4, with `residual=true`, "
        "adversarially fine-tuned from its PSNR twin `blimsr-lite-psnr-x4`.",
        "objective": "GAN stage from the twin's weights: 0.01 adversarial (vanilla BCE, "
        "spectral-norm ResNet discriminator as published) + 0.1 L1 + 1 gradient + 1 D-SSIM + "
        "0.1 discriminator feature matching (standing in for the VGG19 term, whose ImageNet "
        "weights cannot be had offline) + the low-frequency lock (L1 between output and HR "
        "both resized by 1/4). Adam 1e-4, 1e-5 from iteration 2000. Checkpoint: lowest GMSD "
        "on the val role among those within 0.5 dB of bicubic's PSNR.",
        "remarks": "Scored with the data-consistency projection, the default for GAN models "
        "in `medsr upscale` and `medsr eval`. Read it against its twin `blimsr-lite-psnr-x4`.",
    },
    "sisr-us-lateral-x4": {
        "kind": "PSNR",
        "summary": "SISR-US: SRResNet that upsamples the lateral (x) axis only, 4 blocks x 32 "
        "channels, restoring x4 lateral decimation of ultrasound.",
        "objective": "L1 pixel loss only (the published SRGAN stage was not run on CPU).",
        "remarks": "The reference is bicubic interpolation along x of the decimated image. "
        "Trained on the corpus's ultrasound (bundled samples and a cine), validated on a "
        "held-out echocardiogram, evaluated on the one ultrasound test image.",
    },
    "sisr-ct-sparse-view-slices": {
        "kind": "PSNR",
        "summary": "SISR-CT, the successor of sisr-ct-sparse-view: the same published "
        "encoder/decoder (4 blocks x 32 channels, residual: output = FBP input + correction), "
        "trained on whole 512 px slices so that it sees the streaks of a whole slice with a "
        "skull or body wall in it, over view steps 8, 16 and 32 of 1000 views (half the "
        "batches at the published 16).",
        "objective": "MSE against the full-view FBP (same field-of-view mask), as published; "
        "CT in the [-1024, 200] HU window.",
        "remarks": "Warm-started from the crop-trained sisr-ct-sparse-view; the shipped "
        "weights are its iteration-500 EMA (best on val). Scored, as `medsr upscale` and "
        "`medsr eval` run it by default, with one sinogram-domain data-consistency step "
        "(medsr.infer.sinogram: the output moved half-way towards reconstructing, through the "
        "input's own kept views, to the input); the row without it is shown. Two second-stage "
        "runs carried in zoo-runs/ did not beat these weights on the held-out head CT with the "
        "step: sisr-ct-sparse-view-slices-lowfreq (lr 2e-5 + a low-frequency L1 term, 2,300 "
        "iterations: 36.13 dB at step 16) and sisr-ct-sparse-view-slices-dc (trained through "
        "the step, 1,900 iterations: 36.42 dB, its val curve still rising). The step's "
        "geometry is the simulation's (parallel beam, 1000 views over 180 degrees): "
        "`medsr upscale --view-step` sets the kept views; a scanner's fan-beam sparse-view "
        "reconstruction is not this geometry.",
    },
    "sisr-ct-sparse-view": {
        "kind": "PSNR",
        "summary": "SISR-CT: the published encoder/decoder (log2(r) stages of [conv3, "
        "space-to-depth, PReLU], a conv3 head, mirrored decoder; 4 blocks x 32 channels) as a "
        "residual restorer (output = FBP input + correction, identity at initialisation) that "
        "removes sparse-view streaks: 1000 views over 180 degrees, every 16th kept.",
        "objective": "MSE against the full-view FBP (same field-of-view mask), as published; "
        "CT in the [-1024, 200] HU window.",
        "remarks": "Trained on 128 px crops of every corpus slice (streaks do "
        "not depend on anatomy), each projected and reconstructed with sparse and full views; "
        "the reference is the sparse-view FBP itself (the model's input). It removes streaks "
        "on MR, X-ray and ultrasound slices but alone gains only +0.8 dB on the two CT head "
        "slices, whose skull makes far stronger streaks than the training crops held, and it "
        "shifts some slices' mean by more than 0.2%. With the sinogram-domain data-"
        "consistency step (the default since 0.5.0) it gains +4.2 dB there; the whole-slice "
        "sisr-ct-sparse-view-slices is the default CT restorer.",
    },
}
