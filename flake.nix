{
  description = "tickit-sync: self-hosted sync server for the Tickit task manager";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: prev: {
        tickit-sync = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: rec {
        tickit-sync = pkgs.callPackage ./nix/package.nix { };
        default = tickit-sync;
        # Fully static musl binary: copy it to any Linux host and run it.
        static = pkgs.pkgsStatic.callPackage ./nix/package.nix { };
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
      });

      # `nix flake check`: build both variants and run the Rust test suite.
      checks = forAllSystems (
        pkgs:
        let
          own = self.packages.${pkgs.stdenv.hostPlatform.system};
        in
        {
          inherit (own) default static;
          tests = own.default.overrideAttrs { doCheck = true; };
        }
      );

      # services.tickit-sync; its package defaults to this flake's build (set
      # services.tickit-sync.package to override, or apply overlays.default).
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.tickit-sync.package =
            lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = [
            pkgs.clippy
            pkgs.rustfmt
            pkgs.rust-analyzer
          ];
        };
      });
    };
}
