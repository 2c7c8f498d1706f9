"""Training: contrastive losses, GradCache, LoRA, the Trainer and multi-stage recipes.

Imports stay lazy (nothing heavy at package import) so `import umr` never needs training-only dependencies.
"""
