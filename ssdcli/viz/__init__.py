"""Pictures: boxes drawn on images, training and PR curves, prior drawings, augmentation previews.

matplotlib and OpenCV only; no command package is imported from here.
"""
