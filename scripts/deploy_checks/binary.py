"""The release binary must run on gcr.io/distroless/cc-debian12: it may link only the shared
libraries that image has."""

import os
import re
import subprocess

RELEASE = "target/release/silkroute"
DISTROLESS_CC = re.compile(
    r"^(libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s\.so|libstdc\+\+\.so"
    r"|libssl\.so\.3|libcrypto\.so\.3|ld-linux|libz\.so)"
)


def needed(path):
    """The NEEDED entries of an ELF file's dynamic section (readelf -d)."""
    try:
        out = subprocess.run(["readelf", "-d", path], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, check=False).stdout
    except OSError:
        return []
    return re.findall(r"\(NEEDED\).*\[(.*)\]", out)


def check(path=RELEASE):
    if not os.access(path, os.X_OK):
        print("no %s: skipped" % path)
        return 3
    libs = needed(path)
    print("NEEDED: %s" % " ".join(libs))
    # libz: a local build may link the system zlib; the image build sets LIBZ_SYS_STATIC=1.
    if any(lib.startswith("libz.so") for lib in libs):
        print("note: libz is linked dynamically here; the Dockerfile links it statically "
              "(LIBZ_SYS_STATIC=1)")
    unexpected = [lib for lib in libs if not DISTROLESS_CC.match(lib)]
    if unexpected:
        print("not in gcr.io/distroless/cc-debian12: %s" % "\n".join(unexpected))
        return 1
    return 0
