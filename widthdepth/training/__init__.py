"""Training: recipes (optimizer, schedule, augmentation) and the fit loop with its callbacks."""
