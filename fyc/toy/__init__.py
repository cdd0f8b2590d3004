"""Tiny stand-ins for the pretrained parts (UNet, motion adapter, VAE, CLIP text encoder, tokenizer), written in the
same folder layout as a diffusers SD-1.5 checkpoint so that they load through the code path real weights take."""
