################################################################################
#
# steward
#
################################################################################

STEWARD_VERSION = 0.1.0
STEWARD_SITE = $(BR2_EXTERNAL_STEWARD_PATH)/../..
STEWARD_SITE_METHOD = local
STEWARD_LICENSE = Proprietary
# ring's C parts are built with the target gcc Buildroot provides; the Rust side is
# static musl (see .cargo/config.toml for the linker choice).
STEWARD_CARGO_ENV = CC_$(subst -,_,$(RUSTC_TARGET_NAME))=$(TARGET_CC)

define STEWARD_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/release/steward $(TARGET_DIR)/usr/bin/steward
	$(INSTALL) -D -m 0644 $(@D)/board/$(call qstrip,$(BR2_PACKAGE_STEWARD_BOARD)).json \
		$(TARGET_DIR)/etc/steward/board.json
	$(INSTALL) -D -m 0755 $(@D)/contrib/busybox/S50steward $(TARGET_DIR)/etc/init.d/S50steward
	# udhcpc's event script for the netlink backend's DHCP (board network.dhcp_client).
	$(INSTALL) -D -m 0755 $(@D)/contrib/udhcpc/steward.script $(TARGET_DIR)/usr/lib/steward/udhcpc.script
endef

$(eval $(cargo-package))
