"""guest_creator: Palacios guest images (build_vm's .dat blobs).

Public API: build_image (write an image from an XML configuration), open_image /
open_image_bytes (the validating reader the VMM loads guests with), GuestImage, ImageEntry.
"""
from guest_creator.builder import BuildResult, build_image, default_output
from guest_creator.image import GuestImage, ImageEntry, open_image, open_image_bytes

__all__ = ["build_image", "default_output", "BuildResult", "open_image", "open_image_bytes",
           "GuestImage", "ImageEntry"]
