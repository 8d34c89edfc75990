fn main() {
    weft_portmap::main()
}
