"""What every KFP component shares: the image that holds the ``components`` package."""

from components.core.settings import TRAINER_IMAGE

# The trainer image installs the project and its lock file, so no step pip-installs
# anything at run time (air-gapped clusters) and kfp itself comes from the lock too.
COMPONENT_DEFAULTS = {"base_image": TRAINER_IMAGE, "install_kfp_package": False}
