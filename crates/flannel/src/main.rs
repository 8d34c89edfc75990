fn main() {
    weft_flannel::main()
}
