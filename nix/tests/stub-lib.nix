# A small stand-in for nixpkgs' `lib` and `pkgs`, enough to evaluate
# nix/module.nix, nix/package.nix and flake.nix without nixpkgs (which CI
# cannot download). Option types carry a `check` so defaults can be checked;
# mkIf/mkMerge/mkOverride keep nixpkgs' tagged shapes and `resolve` pushes
# them down the way the module system does. Used by eval-module.nix and
# eval-flake.nix.
let
  inherit (builtins)
    all
    attrNames
    concatLists
    filter
    foldl'
    head
    isAttrs
    isBool
    isFunction
    isInt
    isList
    isString
    length
    listToAttrs
    mapAttrs
    stringLength
    substring
    tail
    zipAttrsWith
    ;

  mkType = name: check: { inherit name check; };

  lib = rec {
    # --- options -------------------------------------------------------------
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption =
      name:
      mkOption {
        type = types.bool;
        default = false;
        example = true;
        description = "Whether to enable ${name}.";
      };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    literalMD = text: {
      _type = "literalMD";
      inherit text;
    };

    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    mkOverride = priority: content: {
      _type = "override";
      inherit priority content;
    };
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;

    types = rec {
      bool = mkType "bool" isBool;
      str = mkType "str" isString;
      path = mkType "path" (v: builtins.isPath v || (isString v && hasPrefix "/" v));
      package = mkType "package" (v: isAttrs v || isString v);
      port = mkType "port" (v: isInt v && v >= 0 && v <= 65535);
      int = mkType "int" isInt;
      ints = {
        unsigned = mkType "ints.unsigned" (v: isInt v && v >= 0);
        positive = mkType "ints.positive" (v: isInt v && v > 0);
      };
      anything = mkType "anything" (_: true);
      attrsOf = t: mkType "attrsOf" (v: isAttrs v && all t.check (builtins.attrValues v));
      listOf = t: mkType "listOf" (v: isList v && all t.check v);
      nullOr = t: mkType "nullOr" (v: v == null || t.check v);
      either = a: b: mkType "either" (v: a.check v || b.check v);
      oneOf = ts: mkType "oneOf" (v: builtins.any (t: t.check v) ts);
      enum = vs: mkType "enum" (v: builtins.elem v vs);
      strMatching = re: mkType "strMatching" (v: isString v && builtins.match re v != null);
      submodule = module: (mkType "submodule" isAttrs) // { inherit module; };
    };

    # --- attrsets, lists, strings ---------------------------------------------
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalAttrs = cond: as: if cond then as else { };
    genAttrs =
      names: f:
      listToAttrs (
        map (n: {
          name = n;
          value = f n;
        }) names
      );
    filterAttrs =
      pred: set:
      listToAttrs (
        map (n: {
          name = n;
          value = set.${n};
        }) (filter (n: pred n set.${n}) (attrNames set))
      );
    recursiveUpdate =
      lhs: rhs:
      lhs
      // mapAttrs (
        n: v: if isAttrs v && lhs ? ${n} && isAttrs lhs.${n} && !(v ? _type) then recursiveUpdate lhs.${n} v else v
      ) rhs;
    attrByPath =
      path: default: set:
      if path == [ ] then
        set
      else if isAttrs set && set ? ${head path} then
        attrByPath (tail path) default set.${head path}
      else
        default;
    hasAttrByPath = path: set: attrByPath path { _missing = true; } set != { _missing = true; };

    hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
    hasSuffix =
      suf: s:
      let
        n = stringLength s;
        m = stringLength suf;
      in
      m <= n && substring (n - m) m s == suf;
    removePrefix = pre: s: if hasPrefix pre s then substring (stringLength pre) (-1) s else s;
    hasInfix =
      infix: s:
      let
        n = stringLength infix;
        go = i: i + n <= stringLength s && (substring i n s == infix || go (i + 1));
      in
      go 0;
    concatStringsSep = builtins.concatStringsSep;

    getExe = drv: "${drv}/bin/${drv.meta.mainProgram}";
    getExe' = drv: name: "${drv}/bin/${name}";
    importTOML = p: builtins.fromTOML (builtins.readFile p);

    fileset = {
      toSource = args: args // { _type = "fileset-source"; };
      unions = filesets: filter (x: x != null) filesets;
      maybeMissing = p: if builtins.pathExists p then p else null;
    };
    licenses.mit = {
      spdxId = "MIT";
    };
    platforms = {
      unix = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      linux = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    };
  };

  # --- a tiny module system ----------------------------------------------------
  absent = {
    _absent = true;
  };
  isAbsent = v: isAttrs v && v ? _absent;

  # Merge definitions that reached the same place: attrsets key by key, lists
  # concatenated, equal scalars collapsed; anything else is a conflict.
  mergeDefs =
    defs:
    if length defs == 1 then
      head defs
    else if all (d: isAttrs d && !(d ? _type)) defs then
      zipAttrsWith (_: mergeDefs) defs
    else if all isList defs then
      concatLists defs
    else if all (d: d == head defs) defs then
      head defs
    else
      throw "conflicting definitions: ${builtins.toJSON defs}";

  # Push mkIf/mkMerge/mkOverride down: a false mkIf disappears (`absent`),
  # mkMerge merges its resolved parts, overrides are unwrapped. Lazy per
  # attribute, like the real thing.
  resolve =
    v:
    if isAttrs v && v ? _type then
      if v._type == "if" then
        (if v.condition then resolve v.content else absent)
      else if v._type == "merge" then
        let
          parts = map resolve (filter (p: !(vanishes p)) v.contents);
        in
        if parts == [ ] then absent else mergeDefs parts
      else if v._type == "override" then
        resolve v.content
      else
        v
    else if isAttrs v && !(v ? outPath) then
      mapAttrs (_: resolve) (lib.filterAttrs (_: x: !(vanishes x)) v)
    else
      v;

  # Whether a definition resolves to nothing, decided from its outer mkIf /
  # mkMerge / mkOverride wrappers alone, so that filtering one attrset does
  # not force the values inside it.
  vanishes =
    v:
    if isAttrs v && v ? _type then
      if v._type == "if" then
        !v.condition || vanishes v.content
      else if v._type == "merge" then
        all vanishes v.contents
      else if v._type == "override" then
        vanishes v.content
      else
        false
    else
      false;

  # The definitions that `v` makes at `path`, still wrapped in the mkIfs
  # around them (whose conditions are not evaluated here), like the module
  # system's pushDownProperties.
  defsAt =
    path: v:
    if isAttrs v && (v._type or null) == "if" then
      map (lib.mkIf v.condition) (defsAt path v.content)
    else if isAttrs v && (v._type or null) == "merge" then
      concatLists (map (defsAt path) v.contents)
    else if isAttrs v && (v._type or null) == "override" then
      defsAt path v.content
    else if path == [ ] then
      [ v ]
    else if isAttrs v && v ? ${head path} then
      defsAt (tail path) v.${head path}
    else
      [ ];

  isOption = v: isAttrs v && (v._type or null) == "option";

  # Default value of an option tree; a submodule's own options fill in what
  # its default leaves out.
  defaultsOf =
    tree:
    if isOption tree then
      (
        if (tree.type.name or null) == "submodule" then
          lib.recursiveUpdate (defaultsOf tree.type.module.options) (tree.default or { })
        else
          tree.default
      )
    else
      mapAttrs (_: defaultsOf) tree;

  # Every option of a tree with a default, as { path; ok } where ok tells
  # whether the default passes the option's type check.
  checkDefaults =
    prefix: tree:
    if isOption tree then
      (
        (lib.optional (tree ? default) {
          path = prefix;
          ok = tree.type.check tree.default;
        })
        ++ (
          if (tree.type.name or null) == "submodule" then checkDefaults prefix tree.type.module.options else [ ]
        )
      )
    else
      concatLists (map (n: checkDefaults "${prefix}.${n}" tree.${n}) (attrNames tree));

  # Stub pkgs. formats.toml's generate returns a fake store path with the
  # value appended as JSON after '#', so tests can read back what the module
  # rendered from the ExecStart line.
  mkPkgs =
    extra:
    {
      formats.toml =
        { }:
        {
          type = lib.types.attrsOf lib.types.anything;
          generate = name: value: "/nix/store/stub-${name}#${builtins.toJSON value}";
        };
      writeText = name: _text: "/nix/store/stub-${name}";
      coreutils = "/nix/store/stub-coreutils";
      systemd = "/nix/store/stub-systemd";
      stdenv.hostPlatform.system = "x86_64-linux";
      callPackage = f: args: {
        _callPackage = f;
        _args = args;
        outPath = "/nix/store/stub-callPackage";
        meta.mainProgram = "tickit-sync";
      };
    }
    // extra;

  # Evaluate nix/module.nix with the given services.tickit-sync definitions.
  # `cfg` is the final option value the module sees, `config` what it
  # defines (or {} when disabled).
  evalModule =
    {
      module,
      pkgs,
      user,
    }:
    let
      m = import module {
        inherit lib pkgs;
        config = {
          services.tickit-sync = cfg;
          systemd.package = pkgs.systemd;
        };
      };
      options = m.options.services.tickit-sync;
      base = lib.recursiveUpdate (defaultsOf options) user;
      resolved = resolve m.config;
      config = if isAbsent resolved then { } else resolved;
      # The module's own definitions of services.tickit-sync.settings
      # (tokens_file), found without resolving anything else, since the
      # rest of its config depends on the final settings.
      settingsDefs = map resolve (
        filter (d: !(vanishes d)) (
          defsAt [
            "services"
            "tickit-sync"
            "settings"
          ] m.config
        )
      );
      cfg = base // {
        settings = builtins.foldl' lib.recursiveUpdate base.settings settingsDefs;
      };
    in
    {
      inherit
        m
        options
        cfg
        config
        ;
    };

  # Fold named checks into `true`, or throw naming every one that failed.
  runChecks =
    checks:
    let
      failed = filter (n: checks.${n} != true) (attrNames checks);
    in
    if failed == [ ] then true else throw "failed checks: ${builtins.concatStringsSep ", " failed}";
in
{
  inherit
    lib
    resolve
    absent
    isAbsent
    defaultsOf
    checkDefaults
    mkPkgs
    evalModule
    runChecks
    isFunction
    foldl'
    ;
}
