# NixOS module: services.tickit-sync
#
# Runs `tickit-sync serve` as a sandboxed systemd service with a transient
# user, a config file rendered from `settings`, and (by default) a socket unit
# that owns the listening socket. The hardening mirrors
# systemd/tickit-sync.service in this repository.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    types
    ;

  cfg = config.services.tickit-sync;
  settingsFormat = pkgs.formats.toml { };

  # Where systemd puts the copy of tokensFile (LoadCredential=), readable only
  # by the service's dynamic user.
  credentialsDir = "/run/credentials/tickit-sync.service";
  tokensCredential = "${credentialsDir}/tokens.toml";

  configFile = settingsFormat.generate "tickit-sync.toml" cfg.settings;

  bind = cfg.settings.server.bind;
  port = toString cfg.settings.server.port;
  isUnix = lib.hasPrefix "unix:" bind;
  isLoopback = bind == "127.0.0.1" || bind == "::1" || bind == "localhost";

  # systemd's ListenStream= for [server] bind/port. (While socket-activated
  # the server ignores bind/port and uses the socket it is handed.)
  listenStream =
    if isUnix then
      lib.removePrefix "unix:" bind
    else if bind == "::" || bind == "[::]" then
      port # all addresses, IPv4 and IPv6
    else if lib.hasInfix ":" bind && !(lib.hasPrefix "[" bind) then
      "[${bind}]:${port}"
    else
      "${bind}:${port}";

  # [metrics] bind, if set. While socket-activated the service has no network
  # of its own, so a socket unit of its own listens there and hands the socket
  # to the server by name ("metrics"), as systemd/tickit-sync-metrics.socket does.
  metricsBind = (cfg.settings.metrics or { }).bind or null;

  # One table of the config file: freeform (any key the server knows), with
  # the documented keys typed and defaulted.
  section =
    name: options:
    mkOption {
      default = { };
      description = "The `[${name}]` table of the config file; any key the server knows is accepted.";
      type = types.submodule {
        freeformType = settingsFormat.type;
        inherit options;
      };
    };
in
{
  options.services.tickit-sync = {
    enable = mkEnableOption "tickit-sync, the self-hosted sync server for Tickit";

    package = mkOption {
      type = types.package;
      default = pkgs.tickit-sync or (pkgs.callPackage ./package.nix { });
      defaultText = lib.literalExpression "pkgs.tickit-sync (or built from this repository)";
      description = "The tickit-sync package to run.";
    };

    settings = mkOption {
      default = { };
      description = ''
        Configuration written to the server's config.toml; see the spec or
        `tickit-sync init` for every key. Do not put plaintext tokens here:
        the file ends up in the world-readable Nix store. Token hashes
        (`[[tokens]]` entries with `hash = "sha256:..."`) are fine, secrets
        belong in {option}`services.tickit-sync.tokensFile`.
      '';
      example = lib.literalExpression ''
        {
          server.bind = "0.0.0.0";
          server.max_body_bytes = 64 * 1024 * 1024;
          tokens = [ { name = "laptop"; hash = "sha256:..."; } ];
        }
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          server = section "server" {
            bind = mkOption {
              type = types.str;
              # Loopback: a sync token is a bearer secret and the server speaks
              # plain HTTP, so the safe default is to be reached only through a
              # TLS-terminating reverse proxy on the same host. Set "0.0.0.0"
              # (IPv4) or "::" (IPv4 and IPv6) together with openFirewall to
              # serve the network directly, or "unix:/run/tickit-sync/sock".
              default = "127.0.0.1";
              description = ''
                Address to listen on: an IP address, or `unix:/path` for a Unix
                socket. The default serves only this host (put a TLS reverse
                proxy in front); use `"0.0.0.0"` or `"::"` to listen on every
                address. With socket activation this sets the socket unit's
                `ListenStream=`.
              '';
            };
            port = mkOption {
              type = types.port;
              default = 3030;
              description = "TCP port to listen on (ignored for a Unix socket).";
            };
          };
          database = section "database" {
            path = mkOption {
              type = types.str;
              default = "/var/lib/tickit-sync/tickit-sync.sqlite";
              description = ''
                SQLite database. The default lies in the service's
                StateDirectory, the only writable place in its sandbox.
              '';
            };
          };
          sync = section "sync" {
            clock_skew_allowance_secs = mkOption {
              type = types.ints.unsigned;
              default = 300;
              description = "How far a client's clock may be off, in seconds.";
            };
          };
        };
      };
    };

    tokensFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/tickit-sync-tokens.toml";
      description = ''
        A TOML file of `[[tokens]]` entries, kept out of the Nix store (give
        it as a string: in a flake a path literal lands in the store). It
        may be owned by root with mode 0600: systemd hands a copy to the
        service (LoadCredential=), and the config's top-level `tokens_file`
        points at that copy. Add tokens with
        `tickit-sync token --name NAME --config FILE`; a change to the file
        restarts the service, which then reads the new copy.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/tickit-sync.env";
      description = ''
        systemd EnvironmentFile= for the service, e.g. to set
        TICKIT_SYNC_PORT, TICKIT_SYNC_HOST or TICKIT_SYNC_DB.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open {option}`services.tickit-sync.settings.server.port` in the
        firewall. Also set `settings.server.bind` to a non-loopback address.
      '';
    };

    socketActivation = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Let a systemd socket unit (tickit-sync.socket) own the listening
        socket and start the server on the first connection. Connections
        made while the server restarts wait in the queue instead of being
        refused, and the server runs without network access of its own
        (PrivateNetwork=). When false the service starts at boot and binds
        the address itself.
      '';
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion =
            cfg.tokensFile == null || !(lib.hasPrefix builtins.storeDir (toString cfg.tokensFile));
          message = ''
            services.tickit-sync.tokensFile is in the world-readable Nix store
            (${toString cfg.tokensFile}); name a file outside it, as a string
            such as "/run/secrets/tickit-sync-tokens.toml".
          '';
        }
      ];

      warnings =
        lib.optional (cfg.openFirewall && (isLoopback || isUnix)) ''
          services.tickit-sync.openFirewall is set, but settings.server.bind is
          "${bind}", which the network cannot reach; set it to "0.0.0.0" or "::".
        ''
        ++ lib.optional (cfg.tokensFile == null && !(cfg.settings ? tokens)) ''
          services.tickit-sync has no tokens (neither tokensFile nor
          settings.tokens), so it will refuse every sync request.
        '';

      services.tickit-sync.settings.tokens_file = mkIf (cfg.tokensFile != null) tokensCredential;

      systemd.sockets.tickit-sync = mkIf cfg.socketActivation {
        description = "tickit-sync server socket";
        wantedBy = [ "sockets.target" ];
        listenStreams = [ listenStream ];
        socketConfig = {
          # One service instance accepts every connection itself.
          Accept = false;
        };
      };

      systemd.sockets.tickit-sync-metrics = mkIf (cfg.socketActivation && metricsBind != null) {
        description = "tickit-sync metrics socket";
        wantedBy = [ "sockets.target" ];
        listenStreams = [ metricsBind ];
        socketConfig = {
          Accept = false;
          FileDescriptorName = "metrics";
          Service = "tickit-sync.service";
        };
      };

      systemd.services.tickit-sync = {
        description = "tickit-sync server (self-hosted sync for Tickit)";
        after = [ "network.target" ] ++ lib.optional cfg.socketActivation "tickit-sync.socket";
        requires = lib.optional cfg.socketActivation "tickit-sync.socket";
        # Socket-activated: started by the first connection. Otherwise at boot.
        wantedBy = lib.optional (!cfg.socketActivation) "multi-user.target";

        serviceConfig = {
          # READY=1 once accepting, RELOADING=1 on SIGHUP, STOPPING=1 on
          # SIGTERM, WATCHDOG=1 every WatchdogSec/2.
          Type = "notify";
          NotifyAccess = "main";
          WatchdogSec = "30s";
          ExecStart = "${cfg.package}/bin/tickit-sync serve --config ${configFile}";
          # SIGHUP re-reads the tokens; open connections are kept.
          ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
          # The server drains connections for shutdown_grace_secs (10 s).
          TimeoutStopSec = "15s";
          Restart = "on-failure";
          RestartSec = "2s";

          LoadCredential = lib.optional (cfg.tokensFile != null) "tokens.toml:${toString cfg.tokensFile}";
          EnvironmentFile = lib.optional (cfg.environmentFile != null) (toString cfg.environmentFile);

          DynamicUser = true;
          StateDirectory = "tickit-sync";
          StateDirectoryMode = "0700";
          # Without socket activation a Unix socket goes in /run/tickit-sync.
          # (With it, the socket unit creates that directory; a
          # RuntimeDirectory= would delete the socket when the service stops.)
          RuntimeDirectory = mkIf (!cfg.socketActivation) "tickit-sync";
          UMask = "0077";

          # Sandboxing, as in systemd/tickit-sync.service.
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          DevicePolicy = "closed";
          PrivateIPC = true;
          PrivateMounts = true;
          PrivateUsers = true;
          # The socket unit holds the listening socket, so the server needs no
          # network of its own; without it, the server must bind and accept.
          PrivateNetwork = cfg.socketActivation;
          IPAddressDeny = mkIf cfg.socketActivation "any";
          RestrictAddressFamilies = [
            "AF_UNIX"
            "AF_INET"
            "AF_INET6"
          ];
          RestrictNamespaces = true;
          CapabilityBoundingSet = "";
          AmbientCapabilities = "";
          NoNewPrivileges = true;
          RestrictSUIDSGID = true;
          RemoveIPC = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          RestrictRealtime = true;
          ProtectClock = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectControlGroups = true;
          ProtectProc = "invisible";
          ProcSubset = "pid";
          KeyringMode = "private";
          SystemCallArchitectures = "native";
          SystemCallFilter = [
            "@system-service"
            "~@privileged @resources"
          ];
          SystemCallErrorNumber = "EPERM";
        };
      };
    }

    (mkIf (cfg.tokensFile != null) {
      # Credentials are copied when the service starts, so the server's own
      # 2 s file watcher never sees edits to tokensFile: restart it on change
      # (a no-op while a socket-activated server is not running).
      systemd.paths.tickit-sync-tokens = {
        description = "Watch the tickit-sync tokens file";
        wantedBy = [ "multi-user.target" ];
        pathConfig.PathChanged = toString cfg.tokensFile;
      };
      systemd.services.tickit-sync-tokens = {
        description = "Restart tickit-sync after its tokens file changed";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${config.systemd.package}/bin/systemctl try-restart tickit-sync.service";
        };
      };
    })

    (mkIf (cfg.openFirewall && !isUnix) {
      networking.firewall.allowedTCPPorts = [ cfg.settings.server.port ];
    })
  ]);
}
