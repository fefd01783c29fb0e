# Evaluates flake.nix's outputs and nix/package.nix against a stub nixpkgs
# (see stub-lib.nix) and checks what they produce.
#   nix-instantiate --eval --strict nix/tests/eval-flake.nix   # prints true
let
  stubs = import ./stub-lib.nix;
  inherit (stubs) lib runChecks;

  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  # callPackage that really calls the file with stub arguments, and marks
  # which package set (plain or pkgsStatic) built it.
  mkPkgs =
    system: static:
    let
      pkgs = stubs.mkPkgs {
        stdenv.hostPlatform.system = system;
        callPackage =
          f: args:
          (import f (
            {
              inherit lib;
              rustPlatform.buildRustPackage =
                attrs:
                attrs
                // {
                  inherit static;
                  _from = f;
                  outPath = "/nix/store/stub-${attrs.pname}-${attrs.version}${if static then "-static" else ""}";
                  overrideAttrs = o: attrs // o;
                };
            }
            // args
          ));
        mkShell = attrs: attrs // { _mkShell = true; };
        clippy = "clippy";
        rustfmt = "rustfmt";
        rust-analyzer = "rust-analyzer";
      };
    in
    pkgs // { pkgsStatic = if static then pkgs else mkPkgs system true; };

  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs systems (s: mkPkgs s false);
  };

  flake = import ../../flake.nix;
  outputs = flake.outputs {
    self = outputs;
    inherit nixpkgs;
  };

  cargoToml = builtins.fromTOML (builtins.readFile ../../Cargo.toml);
  pkg = outputs.packages.x86_64-linux.default;

  moduleDef = outputs.nixosModules.default {
    inherit lib;
    pkgs = nixpkgs.legacyPackages.aarch64-linux;
  };
  overlaid = outputs.overlays.default nixpkgs.legacyPackages.x86_64-linux { };
in
runChecks {
  nixpkgsInput = lib.hasPrefix "github:NixOS/nixpkgs/" flake.inputs.nixpkgs.url;
  systems = builtins.all (s: outputs.packages ? ${s} && outputs.apps ? ${s}) systems;
  packageNames = builtins.attrNames outputs.packages.aarch64-linux == [
    "default"
    "static"
    "tickit-sync"
  ];
  defaultIsPackageNix = pkg._from == ../package.nix && pkg.static == false;
  staticUsesPkgsStatic = outputs.packages.x86_64-linux.static.static == true;
  app =
    outputs.apps.x86_64-linux.default == {
      type = "app";
      program = "/nix/store/stub-tickit-sync-${cargoToml.package.version}/bin/tickit-sync";
    };
  overlay = overlaid.tickit-sync._from == ../package.nix;
  moduleImports = moduleDef.imports == [ ../module.nix ];
  modulePackage =
    moduleDef.services.tickit-sync.package._type == "override"
    && moduleDef.services.tickit-sync.package.priority == 1000
    && moduleDef.services.tickit-sync.package.content.outPath
      == outputs.packages.aarch64-linux.default.outPath;
  checksRunTests = outputs.checks.x86_64-linux.tests.doCheck == true;
  devShell = outputs.devShells.x86_64-linux.default._mkShell;

  # nix/package.nix
  pname = pkg.pname == "tickit-sync" && pkg.version == cargoToml.package.version;
  binaryName = pkg.meta.mainProgram == "tickit-sync" && cargoToml.package.name == "tickit-sync";
  license = pkg.meta.license == lib.licenses.mit && pkg.meta.description != "";
  cargoLock = pkg.cargoLock.lockFile == ../../Cargo.lock && builtins.pathExists pkg.cargoLock.lockFile;
  sourceFiles =
    pkg.src.root == ../..
    && builtins.all (p: builtins.elem p pkg.src.fileset) [
      ../../Cargo.toml
      ../../Cargo.lock
      ../../config.example.toml
      ../../src
      ../../tests
    ]
    && !(builtins.elem ../../flake.nix pkg.src.fileset);
  noCheckInBuild = pkg.doCheck == false;
}
