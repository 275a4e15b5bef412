"""The .cnn grammar, shipped inside the package as cnnspec.grammar."""
