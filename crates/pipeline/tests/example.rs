//! The library example runs as part of the test suite (so CI runs it with the artifacts the
//! tests already built): seed 003's spiral through the pipeline API alone lands on the spiral.

#[path = "../examples/spiral.rs"]
mod spiral;

#[test]
fn the_spiral_example_trains_samples_and_passes_its_check() {
    spiral::main().unwrap();
}
