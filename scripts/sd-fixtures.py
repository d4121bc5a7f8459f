#!/usr/bin/env python3
"""Builds Stable Diffusion pipelines with random weights and diffusers' outputs at every seam.

Never run by CI. Needs a venv with torch, diffusers, transformers and safetensors, and CLIP's BPE
file from the open-clip-torch wheel:

    python3 -m venv /tmp/sdref && /tmp/sdref/bin/pip install torch numpy diffusers transformers safetensors scipy
    /tmp/sdref/bin/pip download --no-deps open-clip-torch -d /tmp/oc && unzip -o /tmp/oc/*.whl \
        'open_clip/bpe_simple_vocab_16e6.txt.gz' -d /tmp/oc
    /tmp/sdref/bin/python scripts/sd-fixtures.py --bpe /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz

writes the tiny pipelines (committed) to crates/nn/tests/fixtures/sd/. With `--full DIR` it also
builds the full-size SD 1.x and 2.x architectures (random weights, the real tensor names and
shapes, about 4 and 5 GB, not committed) with their references into DIR; the `--ignored` tests
read them from $DIFFUSE_SD_FULL.

Every reference comes from the pipeline *read back from its folder* by diffusers, so the folder
(its configs, f16 files, shards, old attention names) is what is tested, not the Python objects.
"""

import argparse
import gzip
import json
import os
import shutil
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_DIR = os.path.join(HERE, "..", "crates", "nn", "tests", "fixtures", "sd")

PROMPTS = [
    "a photo of an astronaut riding a horse on mars",
    "",
    "A  Painting   of a squirrel eating a burger!",
    "octopus, underwater, highly detailed, digital art, trending on artstation",
    # 80 words: longer than 77 tokens, truncated keeping EOS.
    " ".join(["a watercolour of a small red fox in the snow"] * 8),
]


def bytes_to_unicode():
    """GPT-2's reversible map of the 256 bytes to printable characters (as CLIP uses it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_vocab(bpe_path, n_merges, out_dir):
    """vocab.json + merges.txt of CLIP's BPE, keeping the first `n_merges` merges (all: 48,894)."""
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines][:n_merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return len(vocab)


def tokenizer_from(vocab_dir, pad_token, shape, out_dir):
    """A CLIPTokenizer saved in one of the two shapes found in the wild: `slow` (vocab.json,
    merges.txt, tokenizer_config.json, as real SD folders ship) or `fast` (tokenizer.json)."""
    tok = CLIPTokenizer(
        os.path.join(vocab_dir, "vocab.json"),
        os.path.join(vocab_dir, "merges.txt"),
        pad_token=pad_token,
        model_max_length=77,
    )
    tok.save_pretrained(out_dir)
    if shape == "slow":
        for name in ("tokenizer.json",):
            p = os.path.join(out_dir, name)
            if os.path.exists(p):
                os.remove(p)
        shutil.copy(os.path.join(vocab_dir, "vocab.json"), out_dir)
        shutil.copy(os.path.join(vocab_dir, "merges.txt"), out_dir)
    else:
        for name in ("vocab.json", "merges.txt"):
            p = os.path.join(out_dir, name)
            if os.path.exists(p):
                os.remove(p)
    return tok


def rename_vae_attention_to_old(folder):
    """Rewrites the VAE's mid-block attention under the pre-2023 names (query/key/value/proj_attn)."""
    path = os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors")
    sd = load_file(path)
    out = {}
    for k, v in sd.items():
        k2 = k
        if ".attentions." in k:
            k2 = k2.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
            k2 = k2.replace(".to_out.0.", ".proj_attn.")
        out[k2] = v
    save_file(out, path, metadata={"format": "pt"})


def build(spec, out_dir, vocab_dir, seed):
    torch.manual_seed(seed)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    unet = UNet2DConditionModel(**spec["unet"])
    vae = AutoencoderKL(**spec["vae"])
    text_encoder = CLIPTextModel(CLIPTextConfig(**spec["text"]))
    # Random weights at init are small; scale the norms' affine parts and biases away from
    # their 1/0 init so that a wrong epsilon or a dropped bias shows in the numbers.
    with torch.no_grad():
        for m in (unet, vae, text_encoder):
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    p.add_(0.1 * torch.randn_like(p))
                elif "norm" in name and name.endswith("weight"):
                    p.mul_(1 + 0.2 * torch.randn_like(p))
    scheduler = spec["scheduler_class"].from_config(spec["scheduler"])
    tok_dir = os.path.join(out_dir, "tokenizer")
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=CLIPTokenizer(
            os.path.join(vocab_dir, "vocab.json"),
            os.path.join(vocab_dir, "merges.txt"),
            pad_token=spec["pad_token"],
            model_max_length=77,
        ),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    kw = {"safe_serialization": True}
    if spec.get("variant"):
        kw["variant"] = spec["variant"]
        pipe.to(torch.float16)
    pipe.save_pretrained(out_dir, **kw)
    if spec.get("unet_shard"):
        # The UNet again, sharded (`*.safetensors.index.json`), in place of the single file.
        for f in os.listdir(os.path.join(out_dir, "unet")):
            if f.endswith(".safetensors"):
                os.remove(os.path.join(out_dir, "unet", f))
        u = unet.to(torch.float16) if spec.get("variant") else unet
        u.save_pretrained(os.path.join(out_dir, "unet"), max_shard_size=spec["unet_shard"], variant=spec.get("variant"))
    shutil.rmtree(tok_dir)
    tokenizer_from(vocab_dir, spec["pad_token"], spec["tokenizer_shape"], tok_dir)
    if spec.get("old_vae_names"):
        rename_vae_attention_to_old(out_dir)


def references(folder, spec, n_latent, out_name, runs=True):
    """diffusers' numbers at each seam, from the pipeline read back from `folder`."""
    t0 = time.time()
    variant = spec.get("variant")
    pipe = StableDiffusionPipeline.from_pretrained(folder, variant=variant, torch_dtype=torch.float32, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    tok = pipe.tokenizer
    g = torch.Generator().manual_seed(1234)
    tensors = {}
    meta = {"tokens": [], "runs": [], "timings": {}}

    # Tokenizer: ids as the pipeline feeds them (padded to 77, truncated keeping EOS).
    for p in PROMPTS:
        ids = tok(p, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids
        full = tok(p).input_ids
        meta["tokens"].append({"prompt": p, "ids": ids, "untruncated_len": len(full)})

    # Text encoder: last hidden state for two prompts.
    with torch.no_grad():
        ids = torch.tensor([meta["tokens"][0]["ids"], meta["tokens"][1]["ids"]])
        hidden = pipe.text_encoder(ids)[0]
    tensors["text.ids"] = ids.to(torch.int64)
    tensors["text.hidden"] = hidden.contiguous()

    # UNet: one batch of 2 at an integer and a fractional timestep.
    in_ch = pipe.unet.config.in_channels
    x = torch.randn(2, in_ch, n_latent, n_latent, generator=g)
    tensors["unet.sample"] = x
    with torch.no_grad():
        for name, t in (("int", 999), ("frac", 437.25)):
            t0u = time.time()
            out = pipe.unet(x, torch.tensor(t, dtype=torch.float32), encoder_hidden_states=hidden).sample
            meta["timings"][f"unet_{name}_s"] = time.time() - t0u
            tensors[f"unet.out.{name}"] = out.contiguous()
    meta["unet_timesteps"] = {"int": 999, "frac": 437.25}

    # VAE: decode latents; encode an image (the mean of the posterior).
    lat_ch = pipe.vae.config.latent_channels
    z = torch.randn(1, lat_ch, n_latent, n_latent, generator=g)
    f = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    img = torch.rand(1, 3, n_latent * f, n_latent * f, generator=g) * 2 - 1
    with torch.no_grad():
        t0v = time.time()
        tensors["vae.decoded"] = pipe.vae.decode(z).sample.contiguous()
        meta["timings"]["vae_decode_s"] = time.time() - t0v
        tensors["vae.mean"] = pipe.vae.encode(img).latent_dist.mean.contiguous()
    tensors["vae.z"] = z
    tensors["vae.image"] = img

    # Whole runs from injected latents (deterministic samplers only).
    if runs:
        base = pipe.scheduler.config
        latents = torch.randn(1, in_ch, n_latent, n_latent, generator=g)
        tensors["run.latents"] = latents
        prompt, negative = PROMPTS[0], "blurry, low quality"
        for name, cls, extra in spec["runs"]:
            pipe.scheduler = cls.from_config(base, **extra)
            t0r = time.time()
            with torch.no_grad():
                out = pipe(
                    prompt,
                    negative_prompt=negative,
                    num_inference_steps=spec.get("run_steps", 4),
                    guidance_scale=spec.get("run_guidance", 5.0),
                    latents=latents.clone(),
                    output_type="latent",
                ).images
                image = pipe.vae.decode(out / pipe.vae.config.scaling_factor).sample
                image = (image / 2 + 0.5).clamp(0, 1)
            meta["timings"][f"run_{name}_s"] = time.time() - t0r
            tensors[f"run.{name}.latents"] = out.contiguous()
            tensors[f"run.{name}.image"] = image.contiguous()
            meta["runs"].append({"name": name, "scheduler": cls.__name__, "extra": extra})
        meta["run"] = {
            "prompt": prompt,
            "negative_prompt": negative,
            "steps": spec.get("run_steps", 4),
            "guidance": spec.get("run_guidance", 5.0),
        }
    meta["total_s"] = time.time() - t0
    meta["versions"] = {"torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
                        "transformers": __import__("transformers").__version__}
    save_file(tensors, os.path.join(folder, "..", out_name + ".safetensors"))
    with open(os.path.join(folder, "..", out_name + ".json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    print(f"{out_name}: {meta['total_s']:.1f} s", json.dumps(meta["timings"]))


SCHED_SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                steps_offset=1, set_alpha_to_one=False, clip_sample=False, skip_prk_steps=True)

RUNS = [
    ("ddim", DDIMScheduler, {}),
    ("euler", EulerDiscreteScheduler, {}),
    ("lms", LMSDiscreteScheduler, {}),
    ("dpmpp-2m", DPMSolverMultistepScheduler, {}),
]

TINY = {
    # SD 1.x style: cross-attention on the first levels, conv projections, quick_gelu, pad = EOS,
    # PNDM named by the folder, old VAE attention names, the slow tokenizer files.
    "tiny-sd1": {
        "unet": dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
                     down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                     cross_attention_dim=32, attention_head_dim=2, norm_num_groups=8, use_linear_projection=False),
        "vae": dict(in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1, latent_channels=4,
                    down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                    norm_num_groups=4, sample_size=16),
        "text": dict(vocab_size=None, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                     bos_token_id=None, eos_token_id=None, pad_token_id=1, projection_dim=32),
        "scheduler_class": PNDMScheduler,
        "scheduler": SCHED_SD,
        "pad_token": "<|endoftext|>",
        "tokenizer_shape": "slow",
        "old_vae_names": True,
        "runs": RUNS,
    },
    # SD 2.x style: diffusers' test layout (cross-attention last), per-level heads, linear
    # projections, exact gelu, pad "!", v-prediction, f16 files in a sharded UNet, tokenizer.json,
    # another VAE scaling factor.
    "tiny-sd2": {
        "unet": dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=2,
                     down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                     up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                     cross_attention_dim=24, attention_head_dim=(2, 4), norm_num_groups=4, use_linear_projection=True,
                     upcast_attention=True, flip_sin_to_cos=True, freq_shift=0),
        "vae": dict(in_channels=3, out_channels=3, block_out_channels=(8, 8, 16), layers_per_block=1, latent_channels=4,
                    down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                    norm_num_groups=4, sample_size=32, scaling_factor=0.13025),
        "text": dict(vocab_size=None, hidden_size=24, intermediate_size=40, num_hidden_layers=3, num_attention_heads=3,
                     max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5,
                     bos_token_id=None, eos_token_id=None, pad_token_id=1, projection_dim=24),
        "scheduler_class": DDIMScheduler,
        "scheduler": dict(SCHED_SD, prediction_type="v_prediction", timestep_spacing="leading"),
        "pad_token": "!",
        "tokenizer_shape": "fast",
        "variant": "fp16",
        "unet_shard": "200KB",
        "runs": RUNS,
    },
}


def full_specs():
    sd1_unet = dict(sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
                    layers_per_block=2,
                    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, use_linear_projection=False)
    vae = dict(in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
               latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
               up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=512)
    return {
        "sd1-full": {
            "unet": sd1_unet,
            "vae": vae,
            "text": dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                         layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
                         projection_dim=768),
            "scheduler_class": PNDMScheduler,
            "scheduler": SCHED_SD,
            "pad_token": "<|endoftext|>",
            "tokenizer_shape": "slow",
            "runs": [("ddim", DDIMScheduler, {})],
            "run_steps": 2,
        },
        "sd2-full": {
            "unet": dict(sd1_unet, sample_size=96, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                         use_linear_projection=True, upcast_attention=True),
            "vae": dict(vae, sample_size=768),
            "text": dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                         num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
                         layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
                         projection_dim=512),
            "scheduler_class": DDIMScheduler,
            "scheduler": dict(SCHED_SD, prediction_type="v_prediction"),
            "pad_token": "!",
            "tokenizer_shape": "slow",
            "runs": [("ddim", DDIMScheduler, {})],
            "run_steps": 2,
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bpe", required=True, help="open_clip's bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--full", help="also build the full-size SD 1.x and 2.x architectures here")
    ap.add_argument("--merges", type=int, default=2000, help="BPE merges kept in the tiny tokenizers")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    vocab_dir = os.path.join("/tmp", "clip-vocab-tiny")
    n_vocab = write_vocab(args.bpe, args.merges, vocab_dir)
    os.makedirs(TINY_DIR, exist_ok=True)
    for i, (name, spec) in enumerate(TINY.items()):
        spec["text"].update(vocab_size=n_vocab, bos_token_id=n_vocab - 2, eos_token_id=n_vocab - 1)
        folder = os.path.join(TINY_DIR, name)
        build(spec, folder, vocab_dir, seed=i)
        references(folder, spec, n_latent=8, out_name=name + ".reference")

    if args.full:
        full_vocab = os.path.join("/tmp", "clip-vocab-full")
        write_vocab(args.bpe, 49152 - 256 - 2, full_vocab)
        for i, (name, spec) in enumerate(full_specs().items()):
            folder = os.path.join(args.full, name)
            t0 = time.time()
            build(spec, folder, full_vocab, seed=10 + i)
            print(f"{name}: built in {time.time() - t0:.1f} s")
            references(folder, spec, n_latent=64 if name == "sd1-full" else 96, out_name=name + ".reference")


if __name__ == "__main__":
    main()
