#!/bin/sh
# Rebuilds the long English texts in tests/data/text/ from the GNU licence texts that Debian's
# base-files package installs under /usr/share/common-licenses.
#
# Why licences: they are long English prose, present on every Debian machine, and each one says
# "Everyone is permitted to copy and distribute verbatim copies of this license document", so we
# may commit them. Each text below is two licences concatenated byte for byte (no edits), because
# no single licence reaches the token counts the tests need (SmolLM2 tokenizer: GPL-3 7,639,
# GFDL-1.3 5,201, GPL-2 4,039, LGPL-2.1 5,865).
#
# Usage: tools/golden/make-texts.sh [SRCDIR]   (run from the repository root)
# Writes: tests/data/text/perplexity-en.txt  (GPL-3 + GFDL-1.3, perplexity)
#         tests/data/text/fidelity-en.txt    (GPL-2 + LGPL-2.1, KV-eviction fidelity)
# Fails if a source file differs from the version the committed texts were made from.
set -eu

src=${1:-/usr/share/common-licenses}
out=tests/data/text

check() {
    echo "$2  $src/$1" | sha256sum -c --quiet - || {
        echo "make-texts: $src/$1 is not the expected version (sha256 mismatch)" >&2
        exit 1
    }
}

# sha256 of base-files 12.4+deb12u11 (Debian 12)
check GPL-3 3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986
check GFDL-1.3 110535522396708cea37c72a802c5e7e81391139f5f7985631c93ef242b206a4
check GPL-2 8177f97513213526df2cf6184d8ff986c675afb514d4e68a404010521b880643
check LGPL-2.1 dc626520dcd53a22f727af3ee42c770e56c97a64fe3adb063799d8ab032fe551

mkdir -p "$out"
cat "$src/GPL-3" "$src/GFDL-1.3" >"$out/perplexity-en.txt"
cat "$src/GPL-2" "$src/LGPL-2.1" >"$out/fidelity-en.txt"
sha256sum "$out/perplexity-en.txt" "$out/fidelity-en.txt"
