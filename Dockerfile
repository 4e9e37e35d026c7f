# p2plab lab image: Debian 12 + the project's QEMU build, guest image and controller, ready to run the
# scenario suite. Needs /dev/kvm only if you opt into KVM; TCG works anywhere.
#   docker build -t p2plab .
#   docker run --rm -v "$PWD/results:/results" p2plab suite scenarios --junit /results/junit.xml
FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates make sudo git openjdk-17-jdk-headless maven \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /lab
COPY . /lab
# scripts/deps.sh installs the rest; the builds land in /root/.cache/p2plab inside the image
RUN make deps qemu guest controller
VOLUME ["/results"]
ENTRYPOINT ["/lab/p2plab"]
CMD ["suite", "scenarios", "--out", "/results/run", "--junit", "/results/junit.xml"]
