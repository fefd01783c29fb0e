# Evaluates nix/module.nix against stubs of nixpkgs' lib and pkgs (see
# stub-lib.nix) and checks its options, defaults and the units it defines.
#   nix-instantiate --eval --strict nix/tests/eval-module.nix   # prints true
let
  stubs = import ./stub-lib.nix;
  inherit (stubs) lib runChecks;

  module = ../module.nix;
  pkgs = stubs.mkPkgs { tickit-sync = "/nix/store/stub-tickit-sync"; };
  eval = user: stubs.evalModule { inherit module pkgs user; };

  # What the module rendered to TOML, read back from ExecStart (the stub
  # generator appends the value as JSON).
  renderedOf =
    e:
    let
      m = builtins.match ".* --config /nix/store/stub-tickit-sync\\.toml#(.*)" (
        e.config.systemd.services.tickit-sync.serviceConfig.ExecStart
      );
    in
    if m == null then throw "ExecStart has no --config" else builtins.fromJSON (builtins.head m);

  listenOf =
    settings:
    (eval {
      enable = true;
      inherit settings;
    }).config.systemd.sockets.tickit-sync.listenStreams;

  # --- defaults: enable = true and nothing else ------------------------------
  d = eval { enable = true; };
  opts = d.options;
  svc = d.config.systemd.services.tickit-sync;
  sc = svc.serviceConfig;
  rendered = renderedOf d;

  # The repository's hand-written unit: every [Service] setting there must be
  # set the same way here (bar the ones that differ by design).
  unitFile = ../../systemd/tickit-sync.service;
  unitSettings =
    let
      lines = builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile unitFile));
      serviceLines =
        (builtins.foldl'
          (
            acc: l:
            if lib.hasPrefix "[" l then
              acc // { inService = l == "[Service]"; }
            else if acc.inService then
              acc // { out = acc.out ++ [ l ]; }
            else
              acc
          )
          {
            inService = false;
            out = [ ];
          }
          lines
        ).out;
      kv = builtins.filter (x: x != null) (map (l: builtins.match "([A-Za-z]+)=(.*)" l) serviceLines);
    in
    builtins.zipAttrsWith (_: vs: vs) (map (p: { ${builtins.head p} = builtins.elemAt p 1; }) kv);
  differsByDesign = [
    "ExecStart" # the store path and the rendered config
    "ExecReload" # kill from the store's coreutils
    "Environment" # the database path is in the rendered config instead
    "ConfigurationDirectory" # the config lives in the store
  ];
  normalize =
    v:
    if builtins.isList v then
      map (x: builtins.head (normalize x)) v
    else if v == true then
      [ "yes" ]
    else if v == false then
      [ "no" ]
    else
      [ (toString v) ];
  # RestrictAddressFamilies is one line in the unit, a list here.
  normalizeKey = k: v: if k == "RestrictAddressFamilies" then [ (toString v) ] else normalize v;
  unitMismatches = builtins.filter (
    k:
    !(builtins.elem k differsByDesign)
    && (!(sc ? ${k}) || normalizeKey k sc.${k} != unitSettings.${k})
  ) (builtins.attrNames unitSettings);

  # --- everything set ----------------------------------------------------------
  full = eval {
    enable = true;
    tokensFile = "/run/secrets/tickit-sync-tokens.toml";
    environmentFile = "/run/secrets/tickit-sync.env";
    openFirewall = true;
    socketActivation = false;
    settings = {
      server.bind = "::";
      server.port = 4000;
      server.max_body_bytes = 1000;
      tokens = [
        {
          name = "laptop";
          hash = "sha256:00";
        }
      ];
    };
  };
  fsc = full.config.systemd.services.tickit-sync.serviceConfig;
  frendered = renderedOf full;

  warningsOf = user: (eval (user // { enable = true; })).config.warnings;
  assertionsOk = e: builtins.all (a: a.assertion) e.config.assertions;
in
runChecks {
  optionNames =
    builtins.attrNames opts == [
      "enable"
      "environmentFile"
      "openFirewall"
      "package"
      "settings"
      "socketActivation"
      "tokensFile"
    ];
  defaultsPassTypeChecks = builtins.all (c: c.ok) (stubs.checkDefaults "services.tickit-sync" opts);
  defaultEnable = opts.enable.default == false;
  defaultPackage = d.cfg.package == "/nix/store/stub-tickit-sync";
  defaultPackageWithoutOverlay =
    (stubs.evalModule {
      inherit module;
      pkgs = stubs.mkPkgs { };
      user = { };
    }).cfg.package._callPackage == ../package.nix;
  defaultSocketActivation = opts.socketActivation.default == true;
  defaultOpenFirewall = opts.openFirewall.default == false;
  defaultTokensFile = opts.tokensFile.default == null;
  defaultEnvironmentFile = opts.environmentFile.default == null;
  defaultSettings =
    d.cfg.settings == {
      server = {
        bind = "127.0.0.1";
        port = 3030;
      };
      database.path = "/var/lib/tickit-sync/tickit-sync.sqlite";
      sync.clock_skew_allowance_secs = 300;
    };
  renderedDefaults = rendered == d.cfg.settings;

  disabledDefinesNothing = (eval { }).config == { };

  execStart = lib.hasPrefix "/nix/store/stub-tickit-sync/bin/tickit-sync serve --config /nix/store/" sc.ExecStart;
  notify = sc.Type == "notify" && sc.WatchdogSec == "30s" && sc.NotifyAccess == "main";
  reload = sc.ExecReload == "/nix/store/stub-coreutils/bin/kill -HUP $MAINPID";
  dynamicUser = sc.DynamicUser == true && sc.StateDirectory == "tickit-sync";
  noCredentials = sc.LoadCredential == [ ] && sc.EnvironmentFile == [ ];
  hardeningMirrorsUnitFile =
    if builtins.pathExists unitFile then
      (if unitMismatches == [ ] then true else throw "differs from systemd/tickit-sync.service: ${toString unitMismatches}")
    else
      true;
  socketUnit =
    d.config.systemd.sockets.tickit-sync == {
      description = "tickit-sync server socket";
      wantedBy = [ "sockets.target" ];
      listenStreams = [ "127.0.0.1:3030" ];
      socketConfig.Accept = false;
    };
  socketActivatedService =
    svc.wantedBy == [ ] && svc.requires == [ "tickit-sync.socket" ] && sc.PrivateNetwork == true && sc.IPAddressDeny == "any" && !(sc ? RuntimeDirectory);
  noFirewall = !(d.config ? networking);
  noTokensWatcher = !(d.config.systemd ? paths) && !(d.config.systemd.services ? tickit-sync-tokens);
  warnsNoTokens = builtins.length d.config.warnings == 1 && lib.hasInfix "has no tokens" (builtins.head d.config.warnings);
  assertionsPass = assertionsOk d;

  listenAll = listenOf { server.bind = "::"; } == [ "3030" ];
  listenIPv4 = listenOf { server.bind = "0.0.0.0"; } == [ "0.0.0.0:3030" ];
  listenIPv6Loopback = listenOf { server.bind = "::1"; server.port = 8080; } == [ "[::1]:8080" ];
  noMetricsSocket = !(d.config.systemd.sockets ? tickit-sync-metrics);
  metricsSocket =
    let
      m = (eval {
        enable = true;
        settings.metrics.bind = "127.0.0.1:9184";
      }).config.systemd.sockets.tickit-sync-metrics;
    in
    m.listenStreams == [ "127.0.0.1:9184" ]
    && m.socketConfig.FileDescriptorName == "metrics"
    && m.socketConfig.Service == "tickit-sync.service";
  listenUnix = listenOf { server.bind = "unix:/run/tickit-sync/sock"; } == [ "/run/tickit-sync/sock" ];

  fullTokensFile = frendered.tokens_file == "/run/credentials/tickit-sync.service/tokens.toml";
  fullFreeformKept = frendered.server.max_body_bytes == 1000 && frendered.tokens == [ { name = "laptop"; hash = "sha256:00"; } ];
  fullTypedKept = frendered.server.port == 4000 && frendered.sync.clock_skew_allowance_secs == 300;
  fullCredential = fsc.LoadCredential == [ "tokens.toml:/run/secrets/tickit-sync-tokens.toml" ];
  fullEnvironmentFile = fsc.EnvironmentFile == [ "/run/secrets/tickit-sync.env" ];
  fullFirewall = full.config.networking.firewall.allowedTCPPorts == [ 4000 ];
  fullNoSocket = !((full.config.systemd.sockets or { }) ? tickit-sync);
  fullServiceAtBoot =
    full.config.systemd.services.tickit-sync.wantedBy == [ "multi-user.target" ]
    && fsc.PrivateNetwork == false && !(fsc ? IPAddressDeny) && fsc.RuntimeDirectory == "tickit-sync";
  fullTokensWatcher =
    full.config.systemd.paths.tickit-sync-tokens.pathConfig.PathChanged == "/run/secrets/tickit-sync-tokens.toml"
    && full.config.systemd.services.tickit-sync-tokens.serviceConfig.ExecStart
      == "/nix/store/stub-systemd/bin/systemctl try-restart tickit-sync.service";
  fullNoWarnings = full.config.warnings == [ ];
  fullAssertionsPass = assertionsOk full;

  warnsFirewallOnLoopback =
    warningsOf {
      openFirewall = true;
      tokensFile = "/run/secrets/t.toml";
    } != [ ];
  noWarningWithTokensInSettings = warningsOf { settings.tokens = [ ]; } == [ ];
  unixNoFirewall =
    !((eval {
      enable = true;
      openFirewall = true;
      settings.server.bind = "unix:/run/tickit-sync/sock";
    }).config ? networking);
  rejectsTokensInStore =
    !(assertionsOk (eval {
      enable = true;
      tokensFile = "/nix/store/0000-tokens.toml";
    }));
}
