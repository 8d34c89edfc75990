fn main() {
    weft_bridge::main()
}
