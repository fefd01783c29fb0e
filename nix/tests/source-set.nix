# The files nix/package.nix puts in the package's source set, as paths relative
# to the repository root ("src", "Cargo.toml", ...), evaluated against the stub
# lib. .ci/source-set.sh compares them with the files the Rust code reads.
#   nix-instantiate --eval --strict --json nix/tests/source-set.nix
let
  inherit (import ./stub-lib.nix) lib;
  root = toString ../..;
  package = import ../package.nix {
    inherit lib;
    rustPlatform.buildRustPackage = attrs: attrs;
  };
  relative = path: builtins.substring (builtins.stringLength root + 1) (-1) (toString path);
in
assert toString package.src.root == root;
map relative package.src.fileset
