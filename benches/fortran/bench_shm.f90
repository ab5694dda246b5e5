! put + get (unpack) through a Unix socket (the shared-memory heap) from Fortran, next
! to two array copies of the same bytes, 1 MiB and 16 MiB of real64; prints per size:
!   "<n> MiB <insitu p50> <insitu p99> <copy x2 p50> <copy x2 p99>" (microseconds).
!   bench_shm_f <socket path> <reps>
program bench_shm
  use, intrinsic :: iso_fortran_env, only: real64, int64
  use insitu
  implicit none
  character(len=4096) :: path, arg
  type(insitu_client) :: c
  real(real64), allocatable :: a(:, :), b(:, :), d(:, :), t(:), m(:)
  integer :: reps, r, mib, nx
  integer(int64) :: t0, t1, t2, rate
  call get_command_argument(1, path)
  call get_command_argument(2, arg)
  read (arg, *) reps
  reps = max(reps, 3)
  allocate(t(reps), m(reps))
  call c%connect("unix://" // trim(path))
  mib = 1
  do while (mib <= 16)
    nx = mib * 128
    allocate(a(nx, 1024), b(nx, 1024), d(nx, 1024))
    call random_number(a)
    b = 0
    d = 0
    do r = -1, reps
      call system_clock(t0, rate)
      call c%put_tensor("f", a, layout=1)
      call c%get_tensor("f", b, layout=1)
      call system_clock(t1)
      d = a
      b = d
      call system_clock(t2)
      if (r >= 1) then
        t(r) = real(t1 - t0, real64) / real(rate, real64) * 1e6_real64
        m(r) = real(t2 - t1, real64) / real(rate, real64) * 1e6_real64
      end if
    end do
    call c%get_tensor("f", b, layout=1)
    if (any(a /= b)) error stop "round trip differs"
    call sort(t)
    call sort(m)
    print '(i0, a, 4f12.1)', mib, " MiB", t(reps / 2 + 1), t(max(1, reps * 99 / 100)), &
      m(reps / 2 + 1), m(max(1, reps * 99 / 100))
    deallocate(a, b, d)
    mib = mib * 16
  end do
contains
  subroutine sort(x)
    real(real64), intent(inout) :: x(:)
    integer :: i, j
    real(real64) :: v
    do i = 2, size(x)
      v = x(i)
      j = i - 1
      do while (j >= 1)
        if (x(j) <= v) exit
        x(j + 1) = x(j)
        j = j - 1
      end do
      x(j + 1) = v
    end do
  end subroutine sort
end program bench_shm
