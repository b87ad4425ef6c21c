"""Reading real image data from disk: image files, class folders, label files, map files, CIFAR batches."""
