"""diffusers on PyTorch timed as `diffuse bench --sd DIR` times diffuse: one guided UNet step
(batch 2) at LATENT x LATENT latents and one VAE decode of such a latent, each the median of
REPEATS after a warm-up, float32 on the CPU; then the peak memory of a 2-step generation at
LATENT * 8 pixels (ru_maxrss of this process). Prints one JSON object. Run by bench/sd.sh,
never by CI. Usage: torch_sd.py DIR THREADS LATENT REPEATS"""
import json, resource, statistics, sys, time

import torch
from diffusers import StableDiffusionPipeline

folder, threads, latent, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None)
pipe.set_progress_bar_config(disable=True)
c = pipe.unet.config.in_channels
g = torch.Generator().manual_seed(0)
z = torch.randn(2, c, latent, latent, generator=g)
ids = torch.arange(pipe.tokenizer.model_max_length)[None]
with torch.no_grad():
    states = pipe.text_encoder(ids)[0]
    context = torch.cat([states, states])
    t = torch.tensor([500.0, 500.0])
    unet = []
    for k in range(repeats + 1):
        t0 = time.perf_counter()
        pipe.unet(z, t, encoder_hidden_states=context).sample.sum().item()
        if k:
            unet.append(time.perf_counter() - t0)
    vae = []
    for k in range(repeats + 1):
        t0 = time.perf_counter()
        pipe.vae.decode(z[:1]).sample.sum().item()
        if k:
            vae.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    pipe("a photo of a cat", num_inference_steps=2, height=latent * 8, width=latent * 8,
         generator=torch.Generator().manual_seed(0))
    generation = time.perf_counter() - t0
print(json.dumps({
    "torch": torch.__version__,
    "unet_step_seconds": statistics.median(unet),
    "vae_decode_seconds": statistics.median(vae),
    "generation_seconds": generation,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
