SUMMARY = "steward: appliance admin API in one static binary"
LICENSE = "CLOSED"

SRC_URI = "git://example.invalid/steward.git;protocol=https;branch=main"
SRCREV = "${AUTOREV}"
S = "${WORKDIR}/git"

inherit cargo systemd

# Static musl build, as the project ships it.
TARGET_SYS:libc-musl = "${TARGET_ARCH}-unknown-linux-musl"
CARGO_BUILD_FLAGS:append = " --locked"

STEWARD_BOARD ?= "generic-x86_64"

SYSTEMD_SERVICE:${PN} = "steward.service"

do_install:append() {
    install -D -m 0644 ${S}/board/${STEWARD_BOARD}.json ${D}${sysconfdir}/steward/board.json
    install -D -m 0644 ${S}/contrib/systemd/steward.service ${D}${systemd_system_unitdir}/steward.service
    # udhcpc's event script for the netlink backend's DHCP (board network.dhcp_client).
    install -D -m 0755 ${S}/contrib/udhcpc/steward.script ${D}${libdir}/steward/udhcpc.script
}

FILES:${PN} += "${sysconfdir}/steward ${libdir}/steward"
