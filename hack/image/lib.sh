# shellcheck shell=bash disable=SC2034
# Shared by hack/image/*.sh (sourced): where images and their caches live, and the buildah
# command line. Nothing here is inside the checkout except the output folder.
#
#   AZURE_JIT_IMAGE_CACHE   the cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/images):
#                           the Debian base as an OCI archive, buildah's layer store
#   IMAGE_OUT               where the OCI archives go (default build/images, git-ignored)
#   IMAGE_STORAGE_DRIVER    containers-storage driver (default overlay; vfs where the cache sits
#                           on an overlay file system itself, which overlay cannot stack on)

log() { printf 'image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

IMAGE_CACHE="${AZURE_JIT_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azure-jit-operator/images}"
IMAGE_OUT="${IMAGE_OUT:-build/images}"
mkdir -p "$IMAGE_CACHE"

if [[ -z "${IMAGE_STORAGE_DRIVER:-}" ]]; then
    if [[ "$(stat -f -c %T "$IMAGE_CACHE")" == overlayfs ]]; then
        IMAGE_STORAGE_DRIVER=vfs
    else
        IMAGE_STORAGE_DRIVER=overlay
    fi
fi

# buildah with a store of its own (not the machine's /var/lib/containers): its layer cache is
# what makes a warm `make image` fast. RUN steps use chroot isolation: no OCI runtime and no
# cgroups needed (this machine's hybrid cgroup layout defeats crun), the host's network.
BUILDAH=(buildah --root "$IMAGE_CACHE/storage" --runroot "$IMAGE_CACHE/runroot"
    --storage-driver "$IMAGE_STORAGE_DRIVER")
export BUILDAH_ISOLATION=chroot
