# cmake/install_packaging.cmake: run by `cmake --install` (and so by cpack)
# after the binary is installed. Writes, for the prefix being installed to,
# the systemd unit (packaging/herald.service.in with its paths filled in) and
# etc/herald/herald.toml: herald.example.toml with the sqlite data in
# /var/lib/herald (the unit's StateDirectory) and static files off. The
# paths are only known at install time: cpack installs with prefix /usr (so
# /etc/herald, /usr/bin), a plain `cmake --install` with its own prefix (so
# /usr/local/etc/herald, /usr/local/bin).
# Input variables (set by the install(CODE) in CMakeLists.txt):
# HERALD_SOURCE_DIR, HERALD_BINARY_DIR.

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(HERALD_SYSCONFDIR "/etc")  # as GNUInstallDirs does for /usr
else()
  set(HERALD_SYSCONFDIR "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(HERALD_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
set(HERALD_DOCDIR "${CMAKE_INSTALL_PREFIX}/share/doc/herald")
set(out "${HERALD_BINARY_DIR}/packaging")
file(MAKE_DIRECTORY "${out}")

configure_file("${HERALD_SOURCE_DIR}/packaging/herald.service.in" "${out}/herald.service" @ONLY)

# The config: every replaced line must be found, or the example changed
# under us and the packaged config would silently keep the old default.
file(READ "${HERALD_SOURCE_DIR}/herald.example.toml" toml)
foreach(pair
        "data_dir = \"data\"|data_dir = \"/var/lib/herald\""
        "static_dir = \"web\"|static_dir = \"\"")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  string(FIND "${toml}" "\n${from}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "herald.example.toml has no line '${from}' to replace for the packaged config")
  endif()
  string(REPLACE "\n${from}\n" "\n${to}\n" toml "${toml}")
endforeach()
string(PREPEND toml
       "# ${HERALD_SYSCONFDIR}/herald/herald.toml: the config of the herald service, written\n"
       "# from herald.example.toml at packaging; edit it, check it with\n"
       "# `herald check-config --config ${HERALD_SYSCONFDIR}/herald/herald.toml`, then\n"
       "# `systemctl reload herald` (namespaces, keys) or `systemctl restart herald`.\n"
       "# Differences from the example: engine.data_dir is /var/lib/herald (the\n"
       "# unit's StateDirectory) and server.static_dir is \"\" (the chat demo, when\n"
       "# packaged, is in ${CMAKE_INSTALL_PREFIX}/share/herald/chat).\n#\n")
file(WRITE "${out}/herald.toml" "${toml}")

file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${out}/herald.service")
file(INSTALL DESTINATION "${HERALD_SYSCONFDIR}/herald" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${out}/herald.toml")
